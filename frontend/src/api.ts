// The REST API (same origin): every call answers a result, never throws.
//
// The token is read from its source at each call (a token URL renews it). With a token URL, a call
// refused with 401 (the token expired in between, say after the computer slept) is sent once more
// with a new token, if one comes within RENEW_WAIT_MS; a 401 refuses a request before it does
// anything, so sending it again is safe.

import type { ApiErrorBody, Order, OrdersPage, Status } from "./protocol";
import type { Tokens } from "./tokenSource";
import { jsonOrNull } from "./responseBody";

export interface OrderDraft {
  customer_name: string;
  product_name: string;
  status: Status;
}

export type OrderPatch = Partial<OrderDraft>;

/** `GET /api/orders`: newest first; `before` is the `next_before` of an earlier page. */
export interface ListQuery {
  status?: Status | null;
  limit?: number;
  before?: string | null;
}

export type ApiResult<T> =
  | { ok: true; value: T }
  | { ok: false; status: number; error: ApiErrorBody; current?: Order };

type Fetch = typeof fetch;

/** How long a call refused with 401 waits for a new token from a token URL. */
export const RENEW_WAIT_MS = 10_000;

export class OrdersApi {
  constructor(
    private readonly base = "",
    private readonly fetchImpl: Fetch = (...args) => fetch(...args),
    /** Sent as `Authorization: Bearer` when the service requires tokens: a token, or its source
     *  (read at each call). */
    private readonly token?: string | Tokens,
  ) {}

  private currentToken(): string | undefined {
    return typeof this.token === "string" ? this.token : this.token?.current();
  }

  /** A new token from a token URL, or undefined when there is none (or it takes too long). */
  private async renewedToken(): Promise<string | undefined> {
    const tokens = this.token;
    if (tokens === undefined || typeof tokens === "string" || !tokens.refreshable) return undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), RENEW_WAIT_MS)));
    try {
      return await Promise.race([tokens.fresh(), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  list(query: ListQuery = {}): Promise<ApiResult<OrdersPage>> {
    const params = new URLSearchParams();
    if (query.status) params.set("status", query.status);
    if (query.limit !== undefined) params.set("limit", String(query.limit));
    if (query.before) params.set("before", query.before);
    const search = params.toString();
    return this.call<OrdersPage>("GET", `/api/orders${search ? `?${search}` : ""}`);
  }

  create(draft: OrderDraft): Promise<ApiResult<Order>> {
    return this.call<Order>("POST", "/api/orders", draft);
  }

  update(id: number, patch: OrderPatch, ifMatch?: number): Promise<ApiResult<Order>> {
    return this.call<Order>("PATCH", `/api/orders/${id}`, patch, ifMatch);
  }

  remove(id: number, ifMatch?: number): Promise<ApiResult<null>> {
    return this.call<null>("DELETE", `/api/orders/${id}`, undefined, ifMatch);
  }

  private async call<T>(method: string, path: string, body?: unknown, ifMatch?: number): Promise<ApiResult<T>> {
    const send = (token: string | undefined): Promise<Response> => {
      const headers: Record<string, string> = { Accept: "application/json" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (ifMatch !== undefined) headers["If-Match"] = `"${ifMatch}"`;
      if (token) headers.Authorization = `Bearer ${token}`;
      return this.fetchImpl(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    };
    let response: Response;
    try {
      const token = this.currentToken();
      response = await send(token);
      if (response.status === 401) {
        const renewed = await this.renewedToken();
        if (renewed !== undefined && renewed !== token) response = await send(renewed);
      }
    } catch {
      return {
        ok: false,
        status: 0,
        error: { code: "network", message: "The server could not be reached.", fields: {} },
      };
    }
    if (response.status === 204) return { ok: true, value: null as T };
    const parsed = await jsonOrNull(response);
    if (response.ok) return { ok: true, value: parsed as T };
    return { ok: false, status: response.status, ...errorOf(response, parsed) };
  }
}

function errorOf(response: Response, parsed: unknown): { error: ApiErrorBody; current?: Order } {
  if (parsed !== null && typeof parsed === "object" && "error" in parsed) {
    const body = parsed as { error: Partial<ApiErrorBody>; order?: Order };
    return {
      error: {
        code: body.error.code ?? "error",
        message: body.error.message ?? response.statusText,
        fields: body.error.fields ?? {},
      },
      current: body.order,
    };
  }
  return {
    error: {
      code: `http_${response.status}`,
      message: `The server answered ${response.status} ${response.statusText}`.trim(),
      fields: {},
    },
  };
}
