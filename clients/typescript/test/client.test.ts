// AssayClient against the real `assay` binary and a real HTTP application, over gRPC (Node.js,
// HTTP/2) and gRPC-Web (fetch, as in browsers, over HTTP/1.1).

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { createServer as createHttpServer } from "node:http";
import { createServer as createHttp2Server } from "node:http2";
import type { AddressInfo } from "node:net";

import { Code } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";

import {
  AssayClient,
  AssayError,
  ResourceInfoSchema,
  ResultStatus,
  RunKind,
  RunStatus,
  MetricService,
  type ExecutionEvent,
} from "../src/index.js";
import { connect } from "../src/node.js";
import { connectWeb } from "../src/web.js";
import { App, Assay } from "./assay.js";

const FRANCE = "What is the capital of France?";
const ITALY = "What is the capital of Italy?";

const unique = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;

async function collect(events: AsyncIterable<ExecutionEvent>): Promise<ExecutionEvent[]> {
  const all = [];
  for await (const event of events) all.push(event);
  return all;
}

/** A metric, an endpoint and a test set of two tests (France passes, Italy fails). */
async function catalogue(assay: AssayClient, appUrl: string): Promise<{ testSet: string; endpoint: string }> {
  const metric = await assay.metrics.create({ name: unique("exact"), kind: { case: "exactMatch", value: {} } });
  const endpoint = await assay.endpoints.create({
    name: unique("app"),
    target: { case: "http", value: { url: appUrl, responseMapping: { output: "$.answer" } } },
  });
  const testSet = await assay.testSets.create({ name: unique("capitals"), metrics: [metric.name] });
  await assay.addTests(testSet.name, [
    { prompt: FRANCE, expectedResponse: "Paris" },
    { prompt: ITALY, expectedResponse: "Rome" },
  ]);
  return { testSet: testSet.name, endpoint: endpoint.name };
}

const transports = {
  grpc: (url: string, apiKey?: string) => connect(url, { apiKey }),
  "grpc-web": (url: string, apiKey?: string) => connectWeb(url, { apiKey }),
};

/** A MetricService on 127.0.0.1 (HTTP/2 for gRPC, HTTP/1.1 for gRPC-Web) whose GetMetric records
 * the `authorization` header it was sent. */
async function recordingServer(protocol: string): Promise<{ url: string; seen: string[]; close: () => void }> {
  const seen: string[] = [];
  const handler = connectNodeAdapter({
    routes: (router) =>
      router.service(MetricService, {
        getMetric(request, context) {
          seen.push(context.requestHeader.get("authorization") ?? "");
          return { name: request.metric };
        },
      }),
  });
  const server = protocol === "grpc" ? createHttp2Server(handler) : createHttpServer(handler);
  // The client keeps its connection open: closing ends it too, so the test process can exit.
  const connections = new Set<{ destroy: () => void }>();
  server.on(protocol === "grpc" ? "session" : "connection", (c) => connections.add(c));
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  const close = () => {
    server.close();
    connections.forEach((c) => c.destroy());
  };
  return { url: `http://127.0.0.1:${port}`, seen, close };
}

let server: Assay;
let app: App;
before(async () => {
  server = await Assay.start();
  app = await App.start();
});
after(async () => {
  await app.stop();
  await server.stop();
});

for (const [protocol, connectTo] of Object.entries(transports)) {
  describe(protocol, () => {
    test("the catalogue helpers create, get, list and update", async () => {
      const assay = connectTo(server.url);
      const { testSet, endpoint } = await catalogue(assay, app.url);
      assert.equal((await assay.testSets.get(testSet)).testCount, 2);
      const got = await assay.endpoints.get(endpoint);
      assert.equal(got.target.case === "http" && got.target.value.url, app.url);
      const names = [];
      for await (const set of assay.testSets.list({ pageSize: 1 })) names.push(set.name);
      assert.ok(names.includes(testSet), names.join());
      const updated = await assay.testSets.update({ name: testSet, description: "two capitals" }, ["description"]);
      assert.equal(updated.description, "two capitals");
    });

    test("execute yields each result before the run ends", async () => {
      const assay = connectTo(server.url);
      const { testSet, endpoint } = await catalogue(assay, app.url);
      const openItaly = app.gate(ITALY); // the second test's answer waits until this is called
      const events = assay.execute(testSet, endpoint, { mode: "sequential" })[Symbol.asyncIterator]();
      const started = (await events.next()).value as ExecutionEvent;
      assert.equal(started.event.case, "runStarted");
      const first = (await events.next()).value as ExecutionEvent;
      assert.equal(first.event.case, "result");
      assert.equal(first.event.value.prompt, FRANCE);
      assert.equal(first.event.value.status, ResultStatus.PASSED);
      // The application still holds the second answer: the first result came while the run ran.
      assert.equal((await assay.getRun(started.event.value.id)).status, RunStatus.RUNNING);
      openItaly();
      const rest = [];
      for (let next = await events.next(); !next.done; next = await events.next()) rest.push(next.value);
      assert.deepEqual(
        rest.map((e) => e.event.case),
        ["result", "runFinished"],
      );
      const summary = rest[1].event.case === "runFinished" ? rest[1].event.value : undefined;
      assert.deepEqual([summary?.total, summary?.passed, summary?.failed], [2, 1, 1]);
    });

    test("rescore reads stored outputs and lastRun returns it", async () => {
      const assay = connectTo(server.url);
      const { testSet, endpoint } = await catalogue(assay, app.url);
      assert.equal(await assay.lastRun(testSet, endpoint), undefined);
      const executed = (await collect(assay.execute(testSet, endpoint))).at(-1)!;
      assert.equal(executed.event.case, "runFinished");
      const calls = app.calls;
      const rescored = await collect(assay.rescore(testSet, endpoint));
      const started = rescored[0].event.case === "runStarted" ? rescored[0].event.value : undefined;
      assert.equal(started?.kind, RunKind.RESCORE);
      assert.equal(started?.sourceRunId, executed.event.value.runId);
      assert.equal(app.calls, calls, "rescore called the endpoint");
      const finished = rescored.at(-1)!;
      assert.equal(finished.event.case, "runFinished");
      assert.deepEqual([finished.event.value.total, finished.event.value.passed], [2, 1]);
      assert.equal((await assay.lastRun(testSet, endpoint))?.runId, finished.event.value.runId);
      // watch replays the stored run.
      const watched = await collect(assay.watch(finished.event.value.runId));
      assert.equal(watched.filter((e) => e.event.case === "result").length, 2);
    });

    test("an invalid argument throws with the field details", async () => {
      const assay = connectTo(server.url);
      const error = await assay.metrics
        .create({ name: unique("bad"), kind: { case: "regex", value: { pattern: "(" } } })
        .then(() => assert.fail("created"), (e: unknown) => e);
      assert.ok(error instanceof AssayError, String(error));
      assert.equal(error.code, Code.InvalidArgument);
      assert.match(error.rawMessage, /regex\.pattern/);
      assert.ok("metric.regex.pattern" in error.fieldViolations, JSON.stringify(error.fieldViolations));
    });

    test("an unknown reference in a stream throws NOT_FOUND with the resource", async () => {
      const assay = connectTo(server.url);
      const error = await collect(assay.rescore("no-such-set", "no-such-endpoint")).then(
        () => assert.fail("rescored"),
        (e: unknown) => e,
      );
      assert.ok(error instanceof AssayError, String(error));
      assert.equal(error.code, Code.NotFound);
      assert.equal(error.detail(ResourceInfoSchema)?.resourceName, "no-such-set");
    });

    test("the API key is sent as a bearer token", async () => {
      const recording = await recordingServer(protocol);
      try {
        const metric = await connectTo(recording.url, "sk-test-1").metrics.get("m");
        assert.equal(metric.name, "m");
      } finally {
        recording.close();
      }
      assert.deepEqual(recording.seen, ["Bearer sk-test-1"]);
    });
  });
}

test("on Node.js the API key is read from ASSAY_API_KEY when not given", async () => {
  const recording = await recordingServer("grpc");
  process.env.ASSAY_API_KEY = "sk-from-env";
  try {
    await connect(recording.url).metrics.get("m");
    await connect(recording.url, { apiKey: "" }).metrics.get("m");
  } finally {
    delete process.env.ASSAY_API_KEY;
    recording.close();
  }
  assert.deepEqual(recording.seen, ["Bearer sk-from-env", ""]);
});

test("a mode other than parallel or sequential is refused", () => {
  const assay = connect("http://127.0.0.1:9"); // never called: the mode is checked first
  assert.throws(() => assay.execute("set", "endpoint", { mode: "fast" as "parallel" }), /"fast"/);
});
