"""Spans from other OpenTelemetry conventions, side by side with a real `mlflow server`: OpenInference, the GenAI
semantic conventions, Gemini CLI, Claude Code, Traceloop, Vercel AI, VoltAgent, LiveKit, Laminar, Langfuse, Spring AI
and Google ADK spans are given MLflow's span types, inputs and outputs, token usage, message formats, tool
definitions, models, providers and costs (Tally priced from MLflow's own catalog files through `--model-prices`),
and their traces the sums of their spans' usage and cost — across batches, and under a client's finalised info —
exactly as MLflow stores and serves them; with the same refusals where MLflow's translation fails."""
import json
import os

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

import mlflow
from conftest import module_server, refused_start
from test_otlp import PB, V3, kv, reduced_info

CATALOG = os.path.join(os.path.dirname(mlflow.__file__), "utils", "model_catalog")


@pytest.fixture(scope="module")
def local():
    yield from module_server("--model-prices", CATALOG)


def s(v):
    return AnyValue(string_value=v)


class Trace:
    """Spans of one trace, sent as one export (or several, `batches`)."""

    def __init__(self, n, resource=()):
        self.trace_id = bytes([n]) * 16
        self.resource = list(resource)
        self.spans = []

    @property
    def id(self):
        return "tr-" + self.trace_id.hex()

    def span(self, i, name, attributes=(), parent=None, events=(), status=Status.STATUS_CODE_OK):
        self.spans.append((i, name, list(attributes), parent, list(events), status))
        return i

    def request(self, only=None):
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.extend(self.resource)
        ss = rs.scope_spans.add()
        for i, name, attributes, parent, events, status in self.spans:
            if only is not None and i not in only:
                continue
            sp = ss.spans.add()
            sp.trace_id, sp.span_id, sp.name = self.trace_id, bytes([0, 0, 0, 0, 0, 0, self.trace_id[0], i]), name
            if parent is not None:
                sp.parent_span_id = bytes([0, 0, 0, 0, 0, 0, self.trace_id[0], parent])
            sp.start_time_unix_nano, sp.end_time_unix_nano = 1700000000000000000 + i * 1000, 1700000001000000000 - i * 1000
            sp.attributes.extend(attributes)
            sp.status.code = status
            for ename, eattrs in events:
                e = sp.events.add()
                e.name, e.time_unix_nano = ename, 1700000000500000000
                e.attributes.extend(eattrs)
        return req


def msgs(*pairs):
    return json.dumps([{"role": r, "content": c} for r, c in pairs])


def conventions():
    """One trace per convention (and the rules between them), as their instrumentations send them."""
    out = {}
    t = out["openinference"] = Trace(1, [kv("service.name", string_value="rag-app")])
    t.span(1, "rag", [kv("openinference.span.kind", string_value="CHAIN"),
                      kv("input.value", string_value=json.dumps({"messages": [{"role": "user", "content": "What is MLflow?"}]})),
                      kv("output.value", string_value="MLflow is a platform."), kv("session.id", string_value="s-oi")])
    t.span(2, "llm", [kv("openinference.span.kind", string_value="LLM"), kv("llm.model_name", string_value="gpt-4o-mini"),
                      kv("llm.provider", string_value="openai"), kv("llm.token_count.prompt", int_value=120),
                      kv("llm.token_count.completion", int_value=30), kv("llm.token_count.total", int_value=150),
                      kv("llm.token_count.prompt_details.cache_read", int_value=20),
                      kv("input.value", string_value=msgs(("user", "What is MLflow?")))], parent=1)
    t.span(3, "retrieve", [kv("openinference.span.kind", string_value="RETRIEVER"), kv("input.value", string_value="MLflow")], parent=1)
    t.span(4, "mystery", [kv("openinference.span.kind", string_value="UNKNOWN")], parent=1)
    t.span(5, "odd", [kv("openinference.span.kind", string_value="NOT_A_KIND"), kv("input.value", string_value="")], parent=1)
    t.span(6, "typed", [kv("openinference.span.kind", string_value="LLM"), kv("mlflow.spanType", string_value="PARSER")], parent=1)

    t = out["genai"] = Trace(2)
    t.span(1, "invoke_agent travel", [kv("gen_ai.operation.name", string_value="invoke_agent"), kv("gen_ai.conversation.id", string_value="conv-7"),
                                      kv("gen_ai.input.messages", string_value=msgs(("user", "Book a flight")))])
    t.span(2, "chat claude", [kv("gen_ai.operation.name", string_value="chat"), kv("gen_ai.request.model", string_value="claude-sonnet-4-5"),
                              kv("gen_ai.response.model", string_value="claude-sonnet-4-5-20250929"),
                              kv("gen_ai.provider.name", string_value="anthropic"), kv("gen_ai.usage.input_tokens", int_value=1000),
                              kv("gen_ai.usage.output_tokens", int_value=250), kv("gen_ai.usage.cache_read.input_tokens", int_value=400),
                              kv("gen_ai.usage.cache_creation.input_tokens", int_value=100),
                              kv("gen_ai.input.messages", string_value=msgs(("system", "Be brief"), ("user", "Book a flight"))),
                              kv("gen_ai.output.messages", string_value=msgs(("assistant", "Done ✈"))),
                              kv("gen_ai.tool.definitions", string_value=json.dumps([{"name": "book", "parameters": {}}]))], parent=1)
    t.span(3, "execute_tool book", [kv("gen_ai.operation.name", string_value="execute_tool"),
                                    kv("gen_ai.tool.call.arguments", string_value='{"to": "Oslo"}'),
                                    kv("gen_ai.tool.call.result", string_value='{"ok": true}')], parent=2)
    t.span(4, "embed", [kv("gen_ai.operation.name", string_value="embeddings"), kv("gen_ai.request.model", string_value="text-embedding-3-small"),
                        kv("gen_ai.usage.input_tokens", string_value="12")], parent=1)
    t.span(5, "gateway", [kv("gen_ai.operation.name", string_value="chat"), kv("gen_ai.request.model", string_value="gateway:/chat"),
                          kv("gen_ai.usage.input_tokens", int_value=5), kv("gen_ai.usage.output_tokens", int_value=5)], parent=1)
    t.span(6, "unpriced", [kv("gen_ai.operation.name", string_value="text_completion"), kv("gen_ai.request.model", string_value="no-such-model"),
                           kv("gen_ai.usage.input_tokens", int_value=5), kv("gen_ai.usage.output_tokens", bool_value=True)], parent=1)

    t = out["gemini"] = Trace(3, [kv("service.name", string_value="gemini-cli")])
    t.span(1, "agent", [kv("gen_ai.agent.name", string_value="gemini-cli"), kv("gen_ai.operation.name", string_value="agent_call")])
    t.span(2, "llm", [kv("gen_ai.agent.name", string_value="gemini-cli"), kv("gen_ai.operation.name", string_value="llm_call"),
                      kv("gen_ai.request.model", string_value="gemini-2.5-pro"), kv("gen_ai.usage.input_tokens", int_value=300),
                      kv("gen_ai.usage.output_tokens", int_value=40),
                      kv("gen_ai.input.messages", string_value=json.dumps([{"role": "user", "parts": [{"text": "hi"}]}])),
                      kv("gen_ai.output.messages", string_value=json.dumps([{"role": "model", "parts": [{"text": "hello"}]},
                                                                           {"role": "model", "parts": [{"text": "again"}]}]))], parent=1)
    t.span(3, "prompt", [kv("gen_ai.agent.name", string_value="gemini-cli"), kv("gen_ai.operation.name", string_value="system_prompt"),
                         kv("gen_ai.input.messages", string_value=json.dumps([{"role": "user", "parts": [{"text": "sys"}]}]))], parent=1)
    t.span(4, "plain", [kv("gen_ai.agent.name", string_value="gemini-cli"), kv("gen_ai.operation.name", string_value="user_prompt"),
                        kv("gen_ai.input.messages", string_value="just text"),
                        kv("gen_ai.output.messages", string_value=json.dumps({"candidates": []}))], parent=1)

    t = out["claude"] = Trace(4, [kv("service.name", string_value="claude-code")])
    t.span(1, "claude_code.interaction", [kv("span.type", string_value="claude_code.interaction"), kv("user_prompt", string_value="fix the bug"),
                                          kv("session.id", string_value="cc-session")])
    t.span(2, "claude_code.llm_request", [kv("span.type", string_value="llm_request"), kv("input_tokens", int_value=10),
                                          kv("output_tokens", int_value=500), kv("cache_read_tokens", int_value=20000),
                                          kv("cache_creation_tokens", string_value="3000"), kv("model", string_value="claude-sonnet-4-5"),
                                          kv("new_context", string_value="<REDACTED>"),
                                          kv("response.model_output", string_value="I will edit main.py")], parent=1)
    t.span(3, "claude_code.tool", [kv("span.type", string_value="claude_code.tool"), kv("tool_input", string_value="<REDACTED>"),
                                   kv("full_command", string_value="pytest -q"), kv("file_path", string_value='"main.py"')], parent=1,
           events=[("tool.output", [kv("output", string_value="<REDACTED>"), kv("content", string_value="3 passed")])])
    t.span(4, "claude_code.tool", [kv("span.type", string_value="claude_code.tool"), kv("new_context", string_value="tool said")], parent=1,
           events=[("tool.output", [kv("diff", string_value='{"lines": 3}')])])
    t.span(5, "float tokens", [kv("span.type", string_value="claude_code.llm_request"), kv("input_tokens", double_value=7.9),
                               kv("output_tokens", string_value="x")], parent=1)

    t = out["traceloop"] = Trace(5)
    t.span(1, "workflow", [kv("traceloop.span.kind", string_value="workflow"), kv("traceloop.entity.input", string_value='{"q": "hi"}'),
                           kv("traceloop.entity.output", string_value='{"a": "yo"}')])
    t.span(2, "openai.chat", [kv("gen_ai.system", string_value="OpenAI"), kv("gen_ai.request.model", string_value="gpt-4o"),
                              kv("gen_ai.prompt.0.role", string_value="user"), kv("gen_ai.prompt.0.content", string_value="hi"),
                              kv("gen_ai.completion.0.content", string_value="yo"), kv("gen_ai.usage.prompt_tokens", int_value=9),
                              kv("gen_ai.usage.completion_tokens", int_value=3), kv("llm.usage.total_tokens", int_value=13)], parent=1)
    t.span(3, "tool", [kv("traceloop.span.kind", string_value="tool"), kv("gen_ai.prompt.x.content", string_value="not a number"),
                       kv("gen_ai.completion.0.tool_calls.1.arguments", string_value='{"city": "Rome"}')], parent=1)

    t = out["vercel"] = Trace(6)
    t.span(1, "ai.generateText", [kv("ai.operationId", string_value="ai.generateText"), kv("ai.prompt", string_value='{"prompt": "hi"}'),
                                  kv("ai.response.text", string_value="hello")])
    t.span(2, "ai.generateText.doGenerate", [kv("ai.operationId", string_value="ai.generateText.doGenerate"),
                                             kv("ai.prompt.messages", string_value=msgs(("user", "hi"))),
                                             kv("ai.prompt.tools", array=[s('{"type": "function", "name": "f"}'), s("plain")]),
                                             kv("ai.prompt.toolChoice", string_value='{"type": "auto"}'),
                                             kv("ai.response.text", string_value="hello"), kv("ai.response.finishReason", string_value="stop"),
                                             kv("ai.model.id", string_value="gpt-4o-mini"), kv("mlflow.message.format", string_value="mine")],
           parent=1)
    t.span(3, "ai.toolCall", [kv("ai.operationId", string_value="ai.toolCall"), kv("ai.toolCall.args", string_value='{"x": 1}'),
                              kv("ai.toolCall.result", string_value='"42"')], parent=1)
    t.span(4, "ai.streamText.doStream", [kv("ai.operationId", string_value="ai.streamText.doStream"),
                                         kv("ai.prompt.tools", string_value="ab1")], parent=1)

    t = out["voltagent"] = Trace(7)
    t.span(1, "agent", [kv("entity.type", string_value="agent"), kv("voltagent.operation_id", string_value="op-1"),
                        kv("agent.messages", string_value=msgs(("user", "plan my day"))), kv("output", string_value="Planned")])
    t.span(2, "llm", [kv("span.type", string_value="llm"), kv("entity.type", string_value="agent"), kv("llm.messages", string_value=msgs(("user", "x"))),
                      kv("usage.prompt_tokens", int_value=11), kv("usage.completion_tokens", int_value=7), kv("llm.usage.total_tokens", int_value=99)],
           parent=1)
    t.span(3, "memory", [kv("span.type", string_value="memory"), kv("input", string_value='{"k": 1}')], parent=1)

    t = out["livekit"] = Trace(8)
    t.span(1, "agent_session", [kv("lk.agent_name", string_value="voice"), kv("lk.room_name", string_value="r1")])
    t.span(2, "llm_node", [kv("gen_ai.request.model", string_value="gpt-4o-mini"), kv("lk.chat_ctx", string_value='{"items": []}'),
                           kv("lk.response.text", string_value="Hi there"), kv("gen_ai.usage.input_tokens", int_value=50),
                           kv("gen_ai.usage.output_tokens", int_value=8), kv("lk.retry_count", int_value=0)], parent=1)
    t.span(3, "tts", [kv("lk.tts.label", string_value="cartesia"), kv("lk.input_text", string_value="Hi there")], parent=1)
    t.span(4, "tool", [kv("lk.function_tool.name", string_value="lookup")], parent=1)
    t.span(5, "events", [kv("gen_ai.operation.name", string_value="CHAT")], parent=1,
           events=[("gen_ai.system.message", [kv("content", string_value="be nice")]), ("gen_ai.user.message", [kv("content", string_value='"hi"')]),
                   ("gen_ai.assistant.message", [kv("content", string_value="")]),
                   ("gen_ai.choice", [kv("content", string_value='{"text": "hey"}'), kv("role", string_value="assistant")])])

    t = out["laminar"] = Trace(9)
    t.span(1, "pipeline", [kv("lmnr.span.type", string_value="PIPELINE"), kv("lmnr.span.input", string_value='{"q": 1}')])
    t.span(2, "llm", [kv("lmnr.span.type", string_value="LLM"), kv("lmnr.span.output", string_value='"answer"'),
                      kv("gen_ai.usage.input_tokens", int_value=4), kv("gen_ai.usage.output_tokens", int_value=2),
                      kv("gen_ai.response.model", string_value="o3-mini"), kv("gen_ai.system", string_value="openai")], parent=1)

    t = out["langfuse"] = Trace(10)
    t.span(1, "gen", [kv("langfuse.observation.type", string_value="generation"), kv("langfuse.observation.input", string_value='[{"role": "user"}]'),
                      kv("langfuse.observation.output", string_value="{}")])
    t.span(2, "span", [kv("langfuse.observation.type", string_value="span")], parent=1)

    t = out["spring"] = Trace(11)
    t.span(1, "chat", [kv("gen_ai.operation.name", string_value="chat"), kv("gen_ai.request.model", string_value="gpt-4o"),
                       kv("gen_ai.usage.input_tokens", int_value=3), kv("gen_ai.usage.output_tokens", int_value=1)],
           events=[("gen_ai.content.prompt", [kv("gen_ai.prompt", string_value="")]), ("gen_ai.content.prompt", [kv("gen_ai.prompt", string_value="Tell a joke")]),
                   ("gen_ai.content.completion", [kv("gen_ai.completion", kvlist=[("text", s("knock knock"))])])])

    t = out["adk"] = Trace(12)
    t.span(1, "call_llm", [kv("gcp.vertex.agent.llm_request", string_value='{"model": "gemini-2.0-flash", "contents": []}'),
                           kv("gcp.vertex.agent.llm_response", string_value='{"text": "ok"}'), kv("gen_ai.usage.input_tokens", int_value=100),
                           kv("gen_ai.usage.output_tokens", int_value=10)])

    t = out["two roots"] = Trace(14)
    t.span(1, "first root", [kv("mlflow.traceTag.a", string_value="1"), kv("mlflow.traceTag.b", string_value="first"),
                             kv("user.id", string_value=""), kv("gen_ai.conversation.id", string_value="c-1")])
    t.span(2, "second root", [kv("mlflow.traceTag.b", string_value="second"), kv("user.id", string_value="later")])
    t.span(3, "tools as text", [kv("ai.operationId", string_value="ai.streamText.doStream"), kv("ai.prompt.tools", string_value="a\r\n1"),
                                kv("lk.\u0301x", int_value=1)], parent=1)

    t = out["rollup"] = Trace(13)
    t.span(1, "agent", [kv("mlflow.spanType", string_value="AGENT"), kv("mlflow.chat.tokenUsage", string_value=json.dumps(
        {"input_tokens": 30, "output_tokens": 6, "total_tokens": 36})), kv("mlflow.llm.cost", string_value=json.dumps(
            {"input_cost": 0.25, "output_cost": 0.5, "total_cost": 0.75}))])
    t.span(2, "step", [kv("mlflow.chat.tokenUsage", string_value=json.dumps({"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}))], parent=1)
    t.span(3, "orphan", [kv("mlflow.chat.tokenUsage", string_value=json.dumps({"input_tokens": 1.5, "cache_read_input_tokens": 4})),
                         kv("mlflow.llm.cost", string_value=json.dumps({"input_cost": 0.1, "total_cost": 0.2}))], parent=99)
    t.span(4, "flag", [kv("mlflow.chat.tokenUsage", string_value=json.dumps({"output_tokens": True}))], parent=99)
    return out


def compare(oracle, local, traces, experiments, label):
    problems = []
    for name, t in traces.items():
        got = {}
        for who, server in (("mlflow", oracle), ("tally", local)):
            art = requests.get(f"{server.url}/ajax-api/2.0/mlflow/get-trace-artifact", params={"request_id": t.id})
            g = requests.get(f"{server.url}{V3}/traces/get", params={"trace_id": t.id}).json()["trace"]
            info = reduced_info(g["trace_info"])
            info["trace_location"] = None
            got[who] = (art.text, info, g["spans"])
        for what, i in (("stored spans", 0), ("trace info", 1), ("traces/get spans", 2)):
            if got["mlflow"][i] != got["tally"][i]:
                problems.append(f"{label} {name}: {what} differ:\nmlflow {got['mlflow'][i]}\ntally  {got['tally'][i]}")
    return problems


def post(server, exp, req):
    return requests.post(server.url + "/v1/traces", data=req.SerializeToString(), headers={**PB, "x-mlflow-experiment-id": exp})


def new_experiments(oracle, local, name):
    return {who: requests.post(f"{s.url}/api/2.0/mlflow/experiments/create", json={"name": name}).json()["experiment_id"]
            for who, s in (("mlflow", oracle), ("tally", local))}


def test_conventions_stored_like_mlflow(local, oracles):
    oracle = oracles["plain"].get()
    exp = new_experiments(oracle, local, "otel-conventions")
    traces = conventions()
    for t in traces.values():
        for who, server in (("mlflow", oracle), ("tally", local)):
            r = post(server, exp[who], t.request())
            assert r.status_code == 200, (who, r.text)
    problems = compare(oracle, local, traces, exp, "one export:")
    assert not problems, "\n\n".join(problems)
    # What the translation gave, read through the client: types, inputs and the trace's sums.
    trace = mlflow.MlflowClient().get_trace(traces["genai"].id)
    assert [sp.span_type for sp in trace.data.spans][:3] == ["AGENT", "CHAT_MODEL", "TOOL"]
    assert trace.info.token_usage["input_tokens"] == 1022 and trace.info.trace_metadata["mlflow.trace.session"] == "conv-7"
    assert json.loads(trace.info.trace_metadata["mlflow.trace.cost"])["total_cost"] > 0
    # Searches see the stored columns: the type MLflow's column keeps is the sender's (untranslated) one.
    for who, server in (("mlflow", oracle), ("tally", local)):
        found = requests.post(f"{server.url}{V3}/traces/search", json={"locations": [{"type": "MLFLOW_EXPERIMENT",
                              "mlflow_experiment": {"experiment_id": exp[who]}}], "filter": "span.type = 'LLM'"}).json()
        got = sorted(t["trace_id"] for t in found.get("traces", []))
        if who == "mlflow":
            expected = got
        elif got != expected:
            problems.append(f"span.type = 'LLM': mlflow {expected}, tally {got}")
    assert not problems, "\n\n".join(problems)


def test_sums_across_batches_like_mlflow(local, oracles):
    """A rollup parent arriving after its children, a child re-sent, a client's finalised info with and without
    counts of its own."""
    oracle = oracles["plain"].get()
    exp = new_experiments(oracle, local, "otel-batches")
    usage = lambda i, o: kv("mlflow.chat.tokenUsage", string_value=json.dumps({"input_tokens": i, "output_tokens": o, "total_tokens": i + o}))
    cost = lambda c: kv("mlflow.llm.cost", string_value=json.dumps({"input_cost": c, "output_cost": c / 2, "total_cost": c * 1.5}))
    late_root = Trace(21)
    late_root.span(2, "child a", [usage(5, 1), cost(0.1)], parent=1)
    late_root.span(3, "child b", [usage(7, 2), cost(0.2)], parent=1)
    late_root.span(1, "root", [usage(12, 3), cost(0.3)])
    late_root.span(4, "grandchild", [usage(100, 100)], parent=2)
    finalized = Trace(22)
    finalized.span(1, "root", [kv("gen_ai.usage.input_tokens", int_value=8), kv("gen_ai.usage.output_tokens", int_value=1)])
    finalized.span(2, "child", [usage(3, 3)], parent=1)
    bare = Trace(23)
    bare.span(1, "root", [])
    bare.span(2, "child", [usage(2, 2), cost(1e-07)], parent=1)
    for who, server in (("mlflow", oracle), ("tally", local)):
        # The client finalised trace 22 with counts of its own, trace 23 without: spans after it.
        for t, meta in ((finalized, {"mlflow.trace.tokenUsage": json.dumps({"total_tokens": 1000, "input_tokens": 900})}), (bare, {})):
            info = {"trace_id": t.id, "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp[who]}},
                    "request_time": "2023-11-14T22:13:20.000Z", "execution_duration": "1s", "state": "OK", "tags": {}, "trace_metadata": meta}
            assert requests.post(server.url + V3 + "/traces", json={"trace": {"trace_info": info}}).status_code == 200
        for only in ({2, 3}, {1}, {2}, {4}):
            assert post(server, exp[who], late_root.request(only)).status_code == 200
        assert post(server, exp[who], finalized.request()).status_code == 200
        assert post(server, exp[who], bare.request({2})).status_code == 200
        assert post(server, exp[who], bare.request({1})).status_code == 200
    problems = compare(oracle, local, {"late root": late_root, "finalized": finalized, "bare": bare}, exp, "batches:")
    # Searches on the sums, which MLflow keeps in columns: equality with the text it renders, presence, no patterns.
    usage_key, cost_key = "metadata.`mlflow.trace.tokenUsage`", "metadata.`mlflow.trace.cost`"
    searches = [(f"{usage_key} = '{{\"input_tokens\": 12, \"output_tokens\": 3, \"total_tokens\": 15}}'", []),
                (f"{usage_key} = '{{\"total_tokens\": 15, \"input_tokens\": 12, \"output_tokens\": 3}}'", []),
                (f"{usage_key} != '{{\"input_tokens\": 12, \"output_tokens\": 3, \"total_tokens\": 15}}'", []),
                (f"{usage_key} IS NULL", []), (f"{usage_key} IS NOT NULL", []), (f"{cost_key} IS NOT NULL", []),
                (f"{usage_key} LIKE '%12%'", []), (f"{cost_key} RLIKE '0'", []), ("", [usage_key]), ("", [f"{cost_key} DESC"])]
    for flt, order in searches:
        answers = {}
        for who, server in (("mlflow", oracle), ("tally", local)):
            r = requests.post(f"{server.url}{V3}/traces/search", json={"locations": [{"type": "MLFLOW_EXPERIMENT",
                              "mlflow_experiment": {"experiment_id": exp[who]}}], "filter": flt, "order_by": order})
            body = r.json()
            answers[who] = (r.status_code, sorted(t["trace_id"] for t in body.get("traces", [])), body.get("error_code"), body.get("message"))
        if answers["mlflow"] != answers["tally"]:
            problems.append(f"search {flt!r} {order}: mlflow {answers['mlflow']}, tally {answers['tally']}")
    assert not problems, "\n\n".join(problems)


def test_translation_refusals_like_mlflow(local, oracles):
    oracle = oracles["plain"].get()
    exp = new_experiments(oracle, local, "otel-refusals")
    cases = {}
    t = cases["kind is a list"] = Trace(31)
    t.span(1, "x", [kv("openinference.span.kind", array=[s("LLM")])])
    t = cases["tools is a number"] = Trace(32)
    t.span(1, "x", [kv("ai.operationId", string_value="ai.generateText.doGenerate"), kv("ai.prompt.tools", int_value=3)])
    t = cases["usage count is text"] = Trace(33)
    t.span(1, "x", [kv("mlflow.chat.tokenUsage", string_value='{"input_tokens": "5"}')])
    t = cases["infinite Claude count"] = Trace(34)
    t.span(1, "x", [kv("span.type", string_value="llm_request"), kv("input_tokens", double_value=float("inf"))])
    t = cases["VoltAgent kind is an object"] = Trace(35)
    t.span(1, "x", [kv("span.type", kvlist=[("a", s("b"))])])
    t = cases["Spring prompt is a list on the root"] = Trace(36)
    t.span(1, "x", [], events=[("gen_ai.content.prompt", [kv("gen_ai.prompt", array=[s("a")])])])
    t = cases["Spring prompt is a long list on the root"] = Trace(38)
    t.span(1, "x", [], events=[("gen_ai.content.prompt", [kv("gen_ai.prompt", array=[s("a")] * 1001)])])
    t = cases["cost not an object"] = Trace(39)
    t.span(1, "x", [kv("mlflow.llm.cost", double_value=0.5)])
    t = cases["cost a JSON string"] = Trace(40)
    t.span(1, "x", [kv("mlflow.llm.cost", string_value="cheap")])
    t = cases["cost text not JSON"] = Trace(44)
    t.span(1, "x", [kv("mlflow.llm.cost", string_value='{"input_cost": 1')])
    t = cases["a long session id before a failing kind"] = Trace(41)
    t.span(1, "x", [kv("session.id", string_value="s" * 300)])
    t.span(2, "y", [kv("openinference.span.kind", array=[s("LLM")])], parent=1)
    t = cases["a failing kind before a long session id"] = Trace(42)
    t.span(1, "x", [kv("openinference.span.kind", array=[s("LLM")])])
    t.span(2, "y", [kv("session.id", string_value="s" * 300)], parent=1)
    t = cases["an integer Python will not read"] = Trace(43)
    t.span(1, "x", [kv("digits", string_value="7" * 5000)])
    t = cases["unhashable but empty kind"] = Trace(37)
    t.span(1, "x", [kv("span.type", array=[]), kv("entity.type", string_value="tool")])
    problems = []
    for label, t in cases.items():
        answers = {}
        for who, server in (("mlflow", oracle), ("tally", local)):
            r = post(server, exp[who], t.request())
            body = r.json() if r.status_code != 200 else {}
            answers[who] = (r.status_code, body.get("detail") or body.get("error_code"))  # MLflow's 400 shows its SQL
        if answers["mlflow"] != answers["tally"]:
            problems.append(f"{label}: mlflow {answers['mlflow']}, tally {answers['tally']}")
    assert not problems, "\n".join(problems)


def test_model_prices_refused_plainly(tmp_path):
    """A prices directory that cannot be read, or a file in it that is not a catalog, stops the server with a sentence
    naming it."""
    assert "--model-prices /nonexistent: /nonexistent is not a directory this server can read" in refused_start(
        ["--port", "0", "--model-prices", "/nonexistent"])
    (tmp_path / "acme.json").write_text("[]")
    assert f"{tmp_path}/acme.json is not a model catalog" in refused_start(["--port", "0", "--model-prices", str(tmp_path)])
