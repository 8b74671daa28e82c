// Transports for Node.js: gRPC over HTTP/2 (default) or gRPC-Web over HTTP/1.1.

import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";

import { AssayClient, bearer } from "./client.js";

/** How to reach the server from Node.js. */
export interface NodeOptions {
  /** Sent as `authorization: Bearer <apiKey>` with every call; left out, it is read from
   * `ASSAY_API_KEY` (as the `assay` command does), and `""` sends none. */
  apiKey?: string;
  /** "grpc" (HTTP/2, default) or "grpc-web" (HTTP/1.1, as through a proxy that only speaks it). */
  protocol?: "grpc" | "grpc-web";
  /** More interceptors, run after the API key's. */
  interceptors?: Interceptor[];
}

/** A transport to `url` (`http://HOST:PORT`, or `https://...` for TLS). */
export function nodeTransport(url: string, options: NodeOptions = {}): Transport {
  const apiKey = options.apiKey ?? process.env.ASSAY_API_KEY;
  const interceptors = [...(apiKey ? [bearer(apiKey)] : []), ...(options.interceptors ?? [])];
  if (options.protocol === "grpc-web") {
    return createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1", interceptors });
  }
  return createGrpcTransport({ baseUrl: url, interceptors });
}

/** An `AssayClient` for Node.js: `connect("http://127.0.0.1:50051", { apiKey })`. */
export function connect(url: string, options: NodeOptions = {}): AssayClient {
  return new AssayClient(nodeTransport(url, options));
}
