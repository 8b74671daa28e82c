// The transport for browsers: gRPC-Web over `fetch`, served by Assay on its gRPC port (the page's
// origin must be allowed with `assay serve --cors-allow-origin`).

import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import { AssayClient, bearer } from "./client.js";

/** How to reach the server from a browser. */
export interface WebOptions {
  /** Sent as `authorization: Bearer <apiKey>` with every call. */
  apiKey?: string;
  /** More interceptors, run after the API key's. */
  interceptors?: Interceptor[];
}

/** A gRPC-Web transport to `url` (`https://assay.example.com` or `http://127.0.0.1:50051`). */
export function webTransport(url: string, options: WebOptions = {}): Transport {
  const interceptors = [...(options.apiKey ? [bearer(options.apiKey)] : []), ...(options.interceptors ?? [])];
  return createGrpcWebTransport({ baseUrl: url, interceptors });
}

/** An `AssayClient` for browsers: `connectWeb("https://assay.example.com", { apiKey })`. */
export function connectWeb(url: string, options: WebOptions = {}): AssayClient {
  return new AssayClient(webTransport(url, options));
}
