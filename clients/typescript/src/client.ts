// AssayClient: the catalogue, runs and their event streams over the generated Connect clients.
// Transport-agnostic: `./node.js` (gRPC or gRPC-Web from Node.js) and `./web.js` (gRPC-Web from
// browsers) make the transport.

import type { DescMessage, JsonObject, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";

import { BehaviorService, BehaviorSchema } from "./gen/assay/v1/behavior_pb.js";
import { EndpointService, EndpointSchema } from "./gen/assay/v1/endpoint_pb.js";
import {
  ExecutionMode,
  TestExecutionService,
  type ExecutionEvent,
  type TestResult,
  type TestRun,
  type TestRunSummary,
} from "./gen/assay/v1/execution_pb.js";
import { MetricService, MetricSchema } from "./gen/assay/v1/metric_pb.js";
import { TestSchema, TestSetService, TestSetSchema, type Test } from "./gen/assay/v1/test_set_pb.js";
import { call, stream } from "./errors.js";

/** Options of every call, e.g. an `AbortSignal` to stop following a stream. */
export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** An interceptor that sends `authorization: Bearer <apiKey>` with every call. */
export function bearer(apiKey: string): Interceptor {
  return (next) => (request) => {
    request.header.set("authorization", `Bearer ${apiKey}`);
    return next(request);
  };
}

/** One kind of catalogue resource: create, get, list, update and delete. A reference is the
 * resource's id or its unique name. */
export interface Collection<Desc extends DescMessage> {
  create(resource: MessageInitShape<Desc>, options?: CallOptions): Promise<MessageShape<Desc>>;
  get(ref: string, options?: CallOptions): Promise<MessageShape<Desc>>;
  /** Every resource, reading page after page. */
  list(options?: CallOptions & { pageSize?: number }): AsyncIterable<MessageShape<Desc>>;
  /** Changes the resource named by its `id` (or, without one, its `name`): the fields in
   * `paths`, or every field set in `resource` when none are given. */
  update(resource: MessageInitShape<Desc>, paths?: string[], options?: CallOptions): Promise<MessageShape<Desc>>;
  delete(ref: string, options?: CallOptions): Promise<void>;
}

// The generated clients share one shape per verb (`createMetric({metric})`, ...): a collection
// calls them by name, so the four kinds need no code of their own.
type Rpc = (request: object, options?: CallOptions) => Promise<Record<string, unknown>>;

function collection<Desc extends DescMessage>(
  client: object,
  kind: string,
  field: string,
): Collection<Desc> {
  const rpc = (verb: string, plural = "") => {
    const method = (client as Record<string, Rpc>)[`${verb}${kind}${plural}`];
    return method.bind(client);
  };
  type R = MessageShape<Desc>;
  return {
    create: (resource, options) => call(() => rpc("create")({ [field]: resource }, options)) as Promise<R>,
    get: (ref, options) => call(() => rpc("get")({ [field]: ref }, options)) as Promise<R>,
    async *list(options = {}) {
      let pageToken = "";
      do {
        const page = await call(() => rpc("list", "s")({ pageSize: options.pageSize ?? 0, pageToken }, options));
        yield* page[`${field}s`] as R[];
        pageToken = page.nextPageToken as string;
      } while (pageToken);
    },
    update: (resource, paths = [], options) =>
      call(() => rpc("update")({ [field]: resource, updateMask: { paths } }, options)) as Promise<R>,
    delete: async (ref, options) => {
      await call(() => rpc("delete")({ [field]: ref }, options));
    },
  };
}

/** `ExecuteRequest`'s other fields, with `mode` also as "parallel" or "sequential". */
export interface ExecuteFields {
  mode?: ExecutionMode | "parallel" | "sequential";
  /** Metrics (ids or names) that replace the test set's and the behaviours' for this run. */
  metrics?: string[];
  maxConcurrency?: number;
  /** Values available to body templates as `parameters.<key>`. */
  parameters?: JsonObject;
}

function mode(value: ExecuteFields["mode"]): ExecutionMode {
  if (typeof value !== "string") {
    return value ?? ExecutionMode.UNSPECIFIED;
  }
  switch (value.toLowerCase()) {
    case "parallel":
      return ExecutionMode.PARALLEL;
    case "sequential":
      return ExecutionMode.SEQUENTIAL;
    default:
      throw new RangeError(`mode ${JSON.stringify(value)}: use "parallel" or "sequential"`);
  }
}

/** A client of one Assay server over `transport`. Every failed call throws `AssayError`. */
export class AssayClient {
  /** Metrics: `assay.metrics.create({...})`, `.get(ref)`, `.list()`, ... */
  readonly metrics: Collection<typeof MetricSchema>;
  /** Behaviours. */
  readonly behaviors: Collection<typeof BehaviorSchema>;
  /** Endpoints. */
  readonly endpoints: Collection<typeof EndpointSchema>;
  /** Test sets (their tests: `addTests`). */
  readonly testSets: Collection<typeof TestSetSchema>;
  private readonly execution: Client<typeof TestExecutionService>;
  private readonly tests: Client<typeof TestSetService>;

  constructor(transport: Transport) {
    this.metrics = collection(createClient(MetricService, transport), "Metric", "metric");
    this.behaviors = collection(createClient(BehaviorService, transport), "Behavior", "behavior");
    this.endpoints = collection(createClient(EndpointService, transport), "Endpoint", "endpoint");
    this.tests = createClient(TestSetService, transport);
    this.testSets = collection(this.tests, "TestSet", "testSet");
    this.execution = createClient(TestExecutionService, transport);
  }

  /** Adds tests to a test set; returns them as stored, with their ids. */
  async addTests(testSet: string, tests: MessageInitShape<typeof TestSchema>[], options?: CallOptions): Promise<Test[]> {
    const response = await call(() => this.tests.addTests({ testSet, tests }, options));
    return response.tests;
  }

  /** Runs a test set against an endpoint and yields the run's events as they arrive: the run
   * (`runStarted`), one `result` per test the moment it is scored, then the summary
   * (`runFinished`). Aborting `options.signal` stops following the run, not the run. */
  execute(testSet: string, endpoint: string, fields: ExecuteFields = {}, options?: CallOptions): AsyncIterable<ExecutionEvent> {
    const request = { ...fields, testSet, endpoint, mode: mode(fields.mode) };
    return stream(this.execution.execute(request, options));
  }

  /** Scores the outputs of an earlier run again (the latest completed one of the pair unless
   * `run` is given), never calling the endpoint; yields events like `execute`. */
  rescore(
    testSet: string,
    endpoint: string,
    fields: { run?: string; metrics?: string[] } = {},
    options?: CallOptions,
  ): AsyncIterable<ExecutionEvent> {
    return stream(this.execution.rescore({ ...fields, testSet, endpoint }, options));
  }

  /** Follows a run: its stored results first, then live ones, then its summary. */
  watch(run: string, options?: CallOptions): AsyncIterable<ExecutionEvent> {
    return stream(this.execution.watchTestRun({ run }, options));
  }

  /** The summary of the pair's latest completed run, or undefined when there is none. */
  async lastRun(testSet: string, endpoint: string, options?: CallOptions): Promise<TestRunSummary | undefined> {
    return (await call(() => this.execution.lastRun({ testSet, endpoint }, options))).run;
  }

  /** The run with that id. */
  getRun(run: string, options?: CallOptions): Promise<TestRun> {
    return call(() => this.execution.getTestRun({ run }, options));
  }

  /** Cancels a running run; returns it as it ended. */
  cancel(run: string, options?: CallOptions): Promise<TestRun> {
    return call(() => this.execution.cancelTestRun({ run }, options));
  }

  /** Every stored result of a run, reading page after page. */
  async *results(run: string, options?: CallOptions): AsyncIterable<TestResult> {
    let pageToken = "";
    do {
      const page = await call(() => this.execution.listTestResults({ run, pageToken }, options));
      yield* page.results;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }
}
