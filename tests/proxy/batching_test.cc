// Dynamic batching in the pipeline: embeddings and unary prompt completions join their backend's
// queue and share one call, and each request is still charged and recorded on its own.
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/pipeline.h"
#include "tests/proxy/pipeline_fixture.h"

namespace tollgate {
namespace {

using pipeline_test::PipelineTest;
using pipeline_test::RecordingSink;
using ::testing::ElementsAre;

constexpr absl::Duration kDelay = absl::Milliseconds(2);

BatchChoice Choice(const std::string& text, v1::FinishReason finish = v1::FINISH_REASON_STOP) {
  BatchChoice choice;
  choice.text = text;
  choice.finish_reason = finish;
  return choice;
}

BatchChoice FailedChoice(const absl::Status& status) {
  BatchChoice choice;
  choice.status = status;
  return choice;
}

// A histogram's or counter's series of `family` for backend "fake": {count or value, sum}.
struct Observed {
  double count = 0;
  double sum = 0;
};

class BatchingTest : public PipelineTest {
 protected:
  // Batching on `fake` with these sizes and a 2 ms delay; `backend_extra` more fields of `fake`.
  void Batching(const std::string& sizes, const std::string& backend_extra = "") {
    Configure(absl::StrCat("backends:\n  - {name: fake, kind: sim, retry: {max_attempts: 1}",
                           backend_extra, "}\n  - {name: spare, kind: sim}\n"),
              "", absl::StrCat("batching: {enabled: true, max_queue_delay_us: 2000, ", sizes, "}"));
  }

  Observed Batches(const std::string& family) {
    Observed out;
    for (const auto& f : registry_.Collect()) {
      if (f.name != family) continue;
      for (const auto& metric : f.metric) {
        if (metric.label.empty() || metric.label[0].value != "fake") continue;
        if (f.type == prometheus::MetricType::Histogram) {
          out.count += static_cast<double>(metric.histogram.sample_count);
          out.sum += metric.histogram.sample_sum;
        } else {
          out.count += metric.counter.value;
        }
      }
    }
    return out;
  }

  // An embeddings request for `inputs` by tenant acme; its answer lands in *out.
  void Embed(std::vector<std::string> inputs, absl::Status* status, v1::EmbedResponse* out) {
    v1::EmbedRequest request;
    request.set_model("m1");
    for (std::string& input : inputs) request.add_inputs(std::move(input));
    IngressInfo info;
    info.authorization = "Bearer k1";
    pipeline_.Embed(info, request, [status, out](const absl::Status& s, v1::EmbedResponse r) {
      *status = s;
      *out = std::move(r);
    });
  }

  std::shared_ptr<RequestHandle> Prompt(const std::string& prompt, RecordingSink* sink,
                                        uint32_t max_tokens = 16, bool stream = false,
                                        absl::Time deadline = absl::InfiniteFuture()) {
    v1::GenerateRequest request;
    request.set_model("m1");
    request.set_prompt(prompt);
    request.mutable_params()->set_max_tokens(max_tokens);
    IngressInfo info;
    info.authorization = "Bearer k1";
    info.deadline = deadline;
    return pipeline_.Generate(info, request, stream, sink);
  }

  // An answer of one vector per input, each [input length, call size], with `input_tokens`.
  void AnswerEmbeddingsWithTheirLengths(uint64_t input_tokens) {
    backend_->embed_answer = [input_tokens](const EmbedCall& call) {
      v1::EmbedResponse response;
      for (const std::string& input : call.request.inputs()) {
        v1::Embedding* e = response.add_embeddings();
        e->add_values(static_cast<float>(input.size()));
        e->add_values(static_cast<float>(call.request.inputs_size()));
      }
      response.mutable_usage()->set_input_tokens(input_tokens);
      response.mutable_usage()->set_source(v1::USAGE_SOURCE_REPORTED);
      return absl::StatusOr<v1::EmbedResponse>(std::move(response));
    };
  }
};

TEST_F(BatchingTest, ConcurrentEmbeddingsBecomeOneBackendCallEachWithItsOwnVectorsAndUsage) {
  Batching("max_batch_size: 6");  // the three requests below have 6 inputs together
  AnswerEmbeddingsWithTheirLengths(61);
  const std::vector<std::vector<std::string>> inputs = {
      {"a"}, {"bbbbbbbb", "cc"}, {"dddddddddddddddd", "eeee", "ffffffffffff"}};
  std::vector<absl::Status> statuses(3, absl::UnknownError("no answer"));
  std::vector<v1::EmbedResponse> responses(3);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < inputs.size(); ++i) {
    threads.emplace_back([&, i] { Embed(inputs[i], &statuses[i], &responses[i]); });
  }
  for (std::thread& t : threads) t.join();  // the last one to join the queue filled it

  EXPECT_EQ(backend_->embed_calls, 1);
  int64_t cost_sum = 0;
  uint64_t input_sum = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_TRUE(statuses[i].ok()) << i << ": " << statuses[i];
    const v1::EmbedResponse& r = responses[i];
    ASSERT_EQ(r.embeddings_size(), static_cast<int>(inputs[i].size())) << i;
    for (int j = 0; j < r.embeddings_size(); ++j) {
      EXPECT_EQ(r.embeddings(j).values(0), inputs[i][j].size()) << "its own vector, in order";
      EXPECT_EQ(r.embeddings(j).values(1), 6.0f) << "from the one call of 6 inputs";
    }
    EXPECT_EQ(r.usage().source(), v1::USAGE_SOURCE_REPORTED);
    EXPECT_EQ(r.cost().total_nano_usd(), static_cast<int64_t>(r.usage().input_tokens()) * 1000);
    EXPECT_EQ(r.backend(), "fake");
    input_sum += r.usage().input_tokens();
    cost_sum += r.cost().total_nano_usd();
  }
  // Estimated weights (no tokenizer: bytes / 4, rounded up): 1, 3 and 8 of 12; 61 splits as 5.08,
  // 15.25 and 40.67, the leftover token going to the largest remainder.
  EXPECT_EQ(responses[0].usage().input_tokens(), 5u);
  EXPECT_EQ(responses[1].usage().input_tokens(), 15u);
  EXPECT_EQ(responses[2].usage().input_tokens(), 41u);
  EXPECT_EQ(input_sum, 61u);
  EXPECT_EQ(cost_sum, 61 * 1000) << "the requests' costs add up to the call's";
  EXPECT_EQ(Tokens("input"), 61);
  EXPECT_EQ(RequestsWithStatus("ok"), 3);
  EXPECT_EQ(Batches("tollgate_batches_total").count, 1);
  EXPECT_EQ(Batches("tollgate_batch_size").sum, 6);
  EXPECT_EQ(Batches("tollgate_batch_queue_delay_seconds").count, 3) << "one wait per request";
}

TEST_F(BatchingTest, ALoneEmbeddingIsSentWhenTheDelayRunsOut) {
  Batching("max_batch_size: 8");
  AnswerEmbeddingsWithTheirLengths(3);
  absl::Status status = absl::UnknownError("no answer");
  v1::EmbedResponse response;
  Embed({"abc"}, &status, &response);
  EXPECT_EQ(backend_->embed_calls, 0) << "waiting for company";
  batch_clock_.Advance(kDelay);
  EXPECT_EQ(backend_->embed_calls, 1);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(response.usage().input_tokens(), 3u);
  EXPECT_EQ(Batches("tollgate_batch_queue_delay_seconds").sum, absl::ToDoubleSeconds(kDelay));
}

TEST_F(BatchingTest, AnEmbeddingsBatchRefusedAsABadRequestIsRetriedAloneSoOnlyTheCulpritFails) {
  Batching("max_batch_size: 3");
  backend_->embed_answer = [](const EmbedCall& call) -> absl::StatusOr<v1::EmbedResponse> {
    for (const std::string& input : call.request.inputs()) {
      if (input == "too long") return absl::InvalidArgumentError("input too long");
    }
    v1::EmbedResponse response;
    for (int i = 0; i < call.request.inputs_size(); ++i) response.add_embeddings()->add_values(1);
    return response;
  };
  std::vector<absl::Status> statuses(3);
  std::vector<v1::EmbedResponse> responses(3);
  Embed({"fine"}, &statuses[0], &responses[0]);
  Embed({"too long"}, &statuses[1], &responses[1]);
  Embed({"also fine"}, &statuses[2], &responses[2]);
  EXPECT_EQ(backend_->embed_calls, 1 + 3) << "the batch, then each request alone";
  EXPECT_TRUE(statuses[0].ok()) << statuses[0];
  EXPECT_EQ(statuses[1].code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(statuses[2].ok()) << statuses[2];
  EXPECT_EQ(responses[0].embeddings_size(), 1);
}

TEST_F(BatchingTest, UnaryPromptCompletionsShareOneBatchCallAndSplitItsUsageExactly) {
  backend_->batches_completions = true;
  Batching("max_batch_size: 8, preferred_batch_sizes: [3]");
  RecordingSink sinks[3];
  Prompt("a short one", &sinks[0]);
  Prompt("a prompt of some more words", &sinks[1]);
  Prompt("and a third", &sinks[2]);
  EXPECT_EQ(backend_->calls(), 0) << "no direct Generate";
  ASSERT_EQ(backend_->batch_calls().size(), 1u);
  const CompleteBatchCall call = backend_->batch_calls()[0];
  EXPECT_THAT(call.prompts,
              ElementsAre("a short one", "a prompt of some more words", "and a third"));
  EXPECT_EQ(call.request.model(), "upstream-m1");
  EXPECT_EQ(call.request.params().max_tokens(), 16u);
  EXPECT_FALSE(call.request.has_prompt()) << "the prompts travel apart";

  CompleteBatchResult result;
  result.choices = {Choice("one"), Choice("two two two two", v1::FINISH_REASON_LENGTH), Choice("")};
  result.usage.emplace();
  result.usage->set_input_tokens(29);
  result.usage->set_output_tokens(11);
  result.usage->set_source(v1::USAGE_SOURCE_REPORTED);
  backend_->AnswerBatch(result);

  uint64_t input = 0, output = 0;
  int64_t cost = 0;
  for (RecordingSink& sink : sinks) {
    ASSERT_EQ(sink.finishes, 1);
    ASSERT_TRUE(sink.status.ok()) << sink.status;
    EXPECT_EQ(sink.final.usage().source(), v1::USAGE_SOURCE_REPORTED);
    input += sink.final.usage().input_tokens();
    output += sink.final.usage().output_tokens();
    cost += sink.final.cost().total_nano_usd();
  }
  EXPECT_EQ(sinks[0].final.text(), "one");
  EXPECT_EQ(sinks[1].final.text(), "two two two two");
  EXPECT_EQ(sinks[1].final.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(input, 29u);
  EXPECT_EQ(output, 11u);
  EXPECT_EQ(sinks[2].final.usage().output_tokens(), 0u) << "it generated nothing";
  EXPECT_EQ(cost, 29 * 1000 + 11 * 4000) << "the requests' costs add up to the call's";
  EXPECT_EQ(Tokens("output"), 11);
  EXPECT_EQ(RequestsWithStatus("ok"), 3);
}

TEST_F(BatchingTest, WithoutReportedUsageEachBatchedRequestIsCountedOnItsOwn) {
  backend_->batches_completions = true;
  Batching("max_batch_size: 2");
  UseTokenizer();
  RecordingSink sinks[2];
  Prompt("Hello there", &sinks[0]);
  Prompt("General Kenobi", &sinks[1]);
  CompleteBatchResult result;
  result.choices = {Choice("Hi."), Choice("You are a bold one.")};
  backend_->AnswerBatch(result);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(sinks[i].final.usage().source(), v1::USAGE_SOURCE_COUNTED) << i;
  }
  EXPECT_EQ(sinks[1].final.usage().input_tokens(), tokenizer_->Count("General Kenobi"));
  EXPECT_EQ(sinks[1].final.usage().output_tokens(), tokenizer_->Count("You are a bold one."));
}

TEST_F(BatchingTest, AtMaxInFlightBatchesTheNextBatchWaitsForTheRunningCallToEnd) {
  backend_->batches_completions = true;
  Batching("max_batch_size: 2, max_in_flight_batches: 1");
  RecordingSink sinks[4];
  Prompt("one", &sinks[0]);
  Prompt("two", &sinks[1]);
  ASSERT_EQ(backend_->batch_calls().size(), 1u);
  Prompt("three", &sinks[2]);
  Prompt("four", &sinks[3]);  // a full batch, held while the first call runs
  EXPECT_EQ(backend_->batch_calls().size(), 1u);

  CompleteBatchResult result;
  result.choices = {Choice("1"), Choice("2")};
  backend_->AnswerBatch(result);  // the call's end releases its place
  EXPECT_EQ(backend_->batch_calls().size(), 1u) << "the queue looks again on its scheduler";
  batch_clock_.Advance(absl::ZeroDuration());  // and then the held batch goes
  ASSERT_EQ(backend_->batch_calls().size(), 2u);
  EXPECT_THAT(backend_->batch_calls()[1].prompts, ElementsAre("three", "four"));
  EXPECT_EQ(sinks[0].finishes, 1);
  EXPECT_EQ(sinks[2].finishes, 0);
  backend_->AnswerBatch(result);
  for (RecordingSink& sink : sinks) EXPECT_TRUE(sink.status.ok()) << sink.status;
  EXPECT_EQ(RequestsWithStatus("ok"), 4);
}

TEST_F(BatchingTest, ARequestHeldBehindARunningCallEndsAtItsDeadlineChargedNothing) {
  backend_->batches_completions = true;
  Batching("max_batch_size: 2, max_in_flight_batches: 1");
  RecordingSink sinks[4];
  Prompt("one", &sinks[0]);
  Prompt("two", &sinks[1]);
  ASSERT_EQ(backend_->batch_calls().size(), 1u);  // the call hangs from here on
  // Deadlines on the queue's clock (the fixture's batch_clock_).
  Prompt("hasty", &sinks[2], 16, false, batch_clock_.Now() + absl::Milliseconds(50));
  Prompt("patient", &sinks[3]);

  batch_clock_.Advance(absl::Milliseconds(50));
  ASSERT_EQ(sinks[2].finishes, 1) << "answered at its deadline, not at the call's end";
  EXPECT_EQ(sinks[2].status.code(), absl::StatusCode::kDeadlineExceeded) << sinks[2].status;
  EXPECT_THAT(std::string(sinks[2].status.message()),
              ::testing::HasSubstr("1 call of this queue still running"));
  EXPECT_EQ(sinks[2].final.cost().total_nano_usd(), 0);
  EXPECT_EQ(sinks[2].final.usage().input_tokens(), 0u) << "the backend never saw it";
  EXPECT_EQ(RequestsWithStatus("deadline_exceeded"), 1);
  EXPECT_EQ(sinks[3].finishes, 0) << "still waiting";

  CompleteBatchResult result;
  result.choices = {Choice("1"), Choice("2")};
  backend_->AnswerBatch(result);
  batch_clock_.Advance(absl::ZeroDuration());
  ASSERT_EQ(backend_->batch_calls().size(), 2u);
  EXPECT_THAT(backend_->batch_calls()[1].prompts, ElementsAre("patient"));
  result.choices = {Choice("3")};
  backend_->AnswerBatch(result);
  EXPECT_TRUE(sinks[3].status.ok()) << sinks[3].status;
  EXPECT_EQ(RequestsWithStatus("ok"), 3);
  EXPECT_EQ(RequestsWithStatus("deadline_exceeded"), 1);
}

TEST_F(BatchingTest, AMissingChoiceFailsOnlyItsRequestWhichPaysItsInputShare) {
  backend_->batches_completions = true;
  Batching("max_batch_size: 2");
  RecordingSink sinks[2];
  Prompt("first prompt", &sinks[0]);
  Prompt("second prompt", &sinks[1]);
  CompleteBatchResult result;
  result.choices = {Choice("fine"), FailedChoice(absl::InternalError("no choice for prompt 1"))};
  result.usage.emplace();
  result.usage->set_input_tokens(10);
  result.usage->set_output_tokens(4);
  result.usage->set_source(v1::USAGE_SOURCE_REPORTED);
  backend_->AnswerBatch(result);
  EXPECT_TRUE(sinks[0].status.ok()) << sinks[0].status;
  EXPECT_EQ(sinks[0].final.usage().output_tokens(), 4u) << "all the output is the answered one's";
  EXPECT_EQ(sinks[1].status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(sinks[1].final.usage().output_tokens(), 0u);
  EXPECT_EQ(sinks[0].final.usage().input_tokens() + sinks[1].final.usage().input_tokens(), 10u);
  EXPECT_GT(sinks[1].final.usage().input_tokens(), 0u) << "the backend read its prompt";
}

TEST_F(BatchingTest, AWholeBatchFailureFailsEveryRequestAndCountsOnceAgainstHealth) {
  backend_->batches_completions = true;
  Batching("max_batch_size: 3", ", ejection: {consecutive_failures: 2}");
  RecordingSink sinks[3];
  for (RecordingSink& sink : sinks) Prompt("p", &sink);
  backend_->AnswerBatch(absl::UnavailableError("connection refused"));
  for (RecordingSink& sink : sinks) {
    EXPECT_EQ(sink.status.code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(sink.final.cost().total_nano_usd(), 0) << "never answered: charged nothing";
  }
  EXPECT_FALSE(holder_.Get()->router->Resolve("m1")->targets[0].health->ejected())
      << "one failed call, not three, against two allowed";
  EXPECT_EQ(Attempts("fake", "failed"), 3) << "each request's attempt";
}

TEST_F(BatchingTest, ACancelledWaitingRequestLeavesItsQueueChargedNothing) {
  backend_->batches_completions = true;
  Batching("max_batch_size: 8");
  RecordingSink gone, staying;
  std::shared_ptr<RequestHandle> handle = Prompt("going", &gone);
  Prompt("staying", &staying);
  handle->Cancel();
  ASSERT_EQ(gone.finishes, 1);
  EXPECT_EQ(gone.status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(gone.final.cost().total_nano_usd(), 0);
  EXPECT_EQ(gone.final.usage().input_tokens(), 0u) << "the backend never saw it";
  batch_clock_.Advance(kDelay);
  ASSERT_EQ(backend_->batch_calls().size(), 1u);
  EXPECT_THAT(backend_->batch_calls()[0].prompts, ElementsAre("staying"));
}

TEST_F(BatchingTest, RequestsWithDifferentParametersGoToDifferentCalls) {
  backend_->batches_completions = true;
  Batching("max_batch_size: 8");
  RecordingSink a, b;
  Prompt("x", &a, /*max_tokens=*/16);
  Prompt("y", &b, /*max_tokens=*/17);
  batch_clock_.Advance(kDelay);
  ASSERT_EQ(backend_->batch_calls().size(), 2u);
  EXPECT_EQ(backend_->batch_calls()[0].prompts.size(), 1u);
  EXPECT_EQ(backend_->batch_calls()[1].prompts.size(), 1u);
}

TEST_F(BatchingTest, StreamsChatAndBackendsWithoutABatchCallAreNotBatched) {
  Batching("max_batch_size: 8");
  RecordingSink unary;
  Prompt("no batch call on this backend", &unary);
  EXPECT_EQ(backend_->calls(), 1) << "called directly";
  backend_->Answer("ok", 3, 1);
  EXPECT_TRUE(unary.status.ok());

  backend_->batches_completions = true;
  RecordingSink stream;
  Prompt("streamed", &stream, 16, /*stream=*/true);
  EXPECT_EQ(backend_->calls(), 2);
  backend_->Answer("ok", 3, 1);

  v1::GenerateRequest chat;
  chat.set_model("m1");
  v1::Message* message = chat.mutable_chat()->add_messages();
  message->set_role("user");
  message->set_content("hi");
  IngressInfo info;
  info.authorization = "Bearer k1";
  RecordingSink chat_sink;
  pipeline_.Generate(info, chat, /*stream=*/false, &chat_sink);
  EXPECT_EQ(backend_->calls(), 3);
  backend_->Answer("ok", 3, 1);
  EXPECT_TRUE(backend_->batch_calls().empty());
}

TEST_F(BatchingTest, CacheableRequestsStayOnTheCachePath) {
  backend_->batches_completions = true;
  Configure(pipeline_test::kDefaultBackends, "",
            "cache: {enabled: true}\nbatching: {enabled: true, max_batch_size: 8}");
  v1::GenerateRequest request;
  request.set_model("m1");
  request.set_prompt("deterministic");
  request.mutable_params()->set_temperature(0);
  IngressInfo info;
  info.authorization = "Bearer k1";
  pipeline_.Generate(info, request, /*stream=*/false, &sink_);
  EXPECT_EQ(backend_->WaitForCalls(1), 1) << "the cache's leader calls the backend directly";
  EXPECT_TRUE(backend_->batch_calls().empty());
  backend_->Answer("cached", 3, 1);
  EXPECT_TRUE(sink_.finished.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST_F(BatchingTest, ABackendMayOptOut) {
  Batching("max_batch_size: 8", ", batching: {enabled: false}");
  AnswerEmbeddingsWithTheirLengths(1);
  absl::Status status;
  v1::EmbedResponse response;
  Embed({"x"}, &status, &response);
  EXPECT_EQ(backend_->embed_calls, 1) << "sent at once, alone";
  EXPECT_TRUE(status.ok()) << status;
}

}  // namespace
}  // namespace tollgate
