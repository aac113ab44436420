import { describe, expect, it } from "vitest";
import { REFUSAL_RETRY, explainRefusal, refusalOf, retryDelayMs, retryText, secondsUntil, tokenEndOf } from "./refusal";

describe("retry delays after refusals", () => {
  it("double from 0.5 s up to the 20 s cap (no jitter at random = 0.5)", () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => retryDelayMs(n, 0.5));
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 20_000, 20_000, 20_000]);
  });

  it("spread by ±20 %, never above the cap", () => {
    expect(retryDelayMs(1, 0)).toBe(400);
    expect(retryDelayMs(1, 0.999_999)).toBe(600);
    expect(retryDelayMs(6, 0)).toBe(12_800);
    expect(retryDelayMs(7, 0)).toBe(16_000);
    for (let n = 1; n < 40; n++) {
      for (const random of [0, 0.25, 0.5, 0.75, 0.999]) {
        const delay = retryDelayMs(n, random);
        expect(delay).toBeGreaterThanOrEqual(REFUSAL_RETRY.baseMs * (1 - REFUSAL_RETRY.jitter));
        expect(delay).toBeLessThanOrEqual(REFUSAL_RETRY.maxMs);
      }
    }
  });

  it("treats odd inputs as the first refusal or clamps them", () => {
    expect(retryDelayMs(0, 0.5)).toBe(500);
    expect(retryDelayMs(1, -1)).toBe(400);
    expect(retryDelayMs(1, 7)).toBe(600);
  });
});

describe("reading a connect_error", () => {
  it("takes the server's message and code (python-socketio's CONNECT_ERROR)", () => {
    const error = Object.assign(new Error("a read token is required"), { data: { code: "unauthorized" } });
    expect(refusalOf(error)).toEqual({ code: "unauthorized", message: "a read token is required" });
  });

  it("copes with a refusal without data or with an odd one", () => {
    expect(refusalOf(new Error("nope"))).toEqual({ code: null, message: "nope" });
    expect(refusalOf(Object.assign(new Error("x"), { data: { code: 7 } }))).toEqual({ code: null, message: "x" });
    expect(refusalOf(undefined)).toEqual({ code: null, message: "the server refused the connection" });
  });
});

describe("what a refusal means", () => {
  it("says what each code means", () => {
    expect(explainRefusal({ code: "unauthorized", message: "a read token is required" })).toMatchObject({
      label: "Refused",
      summary: "a read token is required",
    });
    expect(explainRefusal({ code: "unauthorized", message: "" }).help).toContain("/#token=");
    expect(explainRefusal({ code: "forbidden", message: "this token does not allow reads" }).summary).toBe(
      "the token was not accepted",
    );
    expect(explainRefusal({ code: "too_many_connections", message: "the server is full" })).toMatchObject({
      label: "Server full",
      detail: "waiting for a free connection",
      summary: "the server is full",
    });
    expect(explainRefusal({ code: "maintenance", message: "back at noon" }).summary).toBe("back at noon");
  });

  it("says when the token ended, from the events' codes or an unauthorized refusal's message", () => {
    expect(tokenEndOf({ code: "token_expired", message: "" })).toBe("expired");
    expect(tokenEndOf({ code: "token_revoked", message: "" })).toBe("revoked");
    expect(tokenEndOf({ code: "unauthorized", message: "the token has expired" })).toBe("expired");
    expect(tokenEndOf({ code: "unauthorized", message: "the token was revoked" })).toBe("revoked");
    expect(tokenEndOf({ code: "unauthorized", message: "a token is required" })).toBeNull();
    expect(tokenEndOf({ code: "forbidden", message: "the token has expired" })).toBeNull();
  });

  it("a token that ended: a clear sentence, and what to do", () => {
    expect(explainRefusal({ code: "token_expired", message: "the token expired" })).toMatchObject({
      label: "Token expired",
      title: "Your token expired: open the dashboard at /#token=<a new token>",
    });
    expect(explainRefusal({ code: "unauthorized", message: "the token has expired" }).title).toBe(
      "Your token expired: open the dashboard at /#token=<a new token>",
    );
    expect(explainRefusal({ code: "token_revoked", message: "the token was revoked" })).toMatchObject({
      label: "Token revoked",
      title: "Your token was revoked",
    });
    // With a token URL an expired token is no dead end.
    expect(explainRefusal({ code: "unauthorized", message: "the token has expired", renewable: true })).toMatchObject({
      title: "The server refused the connection: the token expired",
      detail: "the token expired, getting a new one",
    });
    expect(explainRefusal({ code: "forbidden", message: "" }).title).toBe(
      "The server refused the connection: the token was not accepted",
    );
    expect(explainRefusal({ code: "too_many_connections", message: "" }).title).toBe("The server is full");
    expect(explainRefusal({ code: "token_unavailable", message: "the token URL answered 502" }).label).toBe("No token");
  });

  it("counts down to the next try in whole seconds", () => {
    expect(secondsUntil(10_500, 10_000)).toBe(1);
    expect(secondsUntil(14_001, 10_000)).toBe(5);
    expect(secondsUntil(10_000, 10_000)).toBe(0);
    expect(retryText({ at: 10_000, retryAt: 14_000 }, 10_000)).toBe("retrying in 4 s");
    expect(retryText({ at: 10_000, retryAt: 14_000 }, 9_300)).toBe("retrying in 4 s"); // a clock behind
    expect(retryText({ at: 10_000, retryAt: 14_000 }, 14_200)).toBe("retrying now…");
    expect(retryText({ at: 10_000, retryAt: null }, 10_000)).toBe("retrying now…");
    expect(retryText({ at: 10_000, retryAt: null, final: true }, 10_000)).toBe("not retrying by itself");
  });
});
