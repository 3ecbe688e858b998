// Drives Tollgate's OpenAI-compatible HTTP ingress with the official openai SDK and prints one JSON
// object with what it saw. Usage: node drive.mjs BASE_URL API_KEY CHAT_MODEL EMBEDDING_MODEL
import OpenAI from 'openai';

const [baseURL, apiKey, model, embeddingModel] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30000 });
const messages = [{ role: 'user', content: 'Say something about tokens.' }];
const params = { model, messages, max_tokens: 24, temperature: 0 };
const out = {};

const { data: chat, response } = await client.chat.completions.create(params).withResponse();
out.chat = {
  content: chat.choices[0].message.content,
  finish_reason: chat.choices[0].finish_reason,
  usage: chat.usage,
  cost_header: response.headers.get('x-tollgate-cost-usd'),
  cache_header: response.headers.get('x-tollgate-cache'),
  request_id_header: response.headers.get('x-request-id'),
};

async function drain(stream) {
  const seen = { text: '', chunks: 0, usage: null, cost: null, finish_reason: null };
  for await (const chunk of stream) {
    seen.chunks++;
    if (chunk.choices.length > 0) {
      seen.text += chunk.choices[0].delta?.content ?? '';
      seen.finish_reason = chunk.choices[0].finish_reason ?? seen.finish_reason;
    }
    if (chunk.usage) {
      seen.usage = chunk.usage;
      seen.cost = chunk.x_tollgate ?? null;
    }
  }
  return seen;
}
out.stream_with_usage = await drain(await client.chat.completions.create(
    { ...params, stream: true, stream_options: { include_usage: true } }));
out.stream_without_usage = await drain(await client.chat.completions.create({ ...params, stream: true }));

const embeddings = await client.embeddings.create({ model: embeddingModel, input: ['first', 'second text'] });
out.embeddings = {
  count: embeddings.data.length,
  dimensions: embeddings.data[0].embedding.length,
  first_value: embeddings.data[0].embedding[0],
  usage: embeddings.usage,
};

try {
  await new OpenAI({ baseURL, apiKey: 'not-a-key', maxRetries: 0 }).chat.completions.create(params);
  out.bad_key = { status: 200 };
} catch (error) {
  out.bad_key = { status: error.status ?? null, message: error.message };
}

console.log(JSON.stringify(out));
