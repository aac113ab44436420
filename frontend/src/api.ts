// The REST API (same origin): every call answers a result, never throws.

import type { ApiErrorBody, Order, OrdersPage, Status } from "./protocol";

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

export class OrdersApi {
  constructor(
    private readonly base = "",
    private readonly fetchImpl: Fetch = (...args) => fetch(...args),
    /** Sent as `Authorization: Bearer` when the service requires tokens. */
    private readonly token?: string,
  ) {}

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
    const headers: Record<string, string> = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (ifMatch !== undefined) headers["If-Match"] = `"${ifMatch}"`;
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      return {
        ok: false,
        status: 0,
        error: { code: "network", message: "The server could not be reached.", fields: {} },
      };
    }
    if (response.status === 204) return { ok: true, value: null as T };
    let parsed: unknown = null;
    try {
      parsed = await response.json();
    } catch {
      parsed = null;
    }
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
