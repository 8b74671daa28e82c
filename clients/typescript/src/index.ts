// The Assay client: `AssayClient` over any Connect transport, `AssayError`, and the generated
// messages and services of assay.v1. Transports: "@assay/client/node" and "@assay/client/web".

export { AssayClient, bearer, type CallOptions, type Collection, type ExecuteFields } from "./client.js";
export { AssayError } from "./errors.js";
export * from "./gen/assay/v1/behavior_pb.js";
export * from "./gen/assay/v1/endpoint_pb.js";
export * from "./gen/assay/v1/execution_pb.js";
export * from "./gen/assay/v1/metric_pb.js";
export * from "./gen/assay/v1/test_set_pb.js";
export * from "./rpc/google/rpc/error_details_pb.js";
