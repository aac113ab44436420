import { describe, expect, it } from "vitest";
import { relativeTime } from "./format";
import { checkFields, nameProblem, serverFieldErrors, stripName } from "./validation";

describe("client-side validation mirrors the server", () => {
  it("strips the same whitespace as the server", () => {
    expect(stripName("  Ada \t\n")).toBe("Ada");
    expect(stripName("\u00a0\u3000Ada\u2028")).toBe("Ada");
    expect(stripName("\u0085Ada\u0085")).toBe("Ada"); // JS trim() keeps U+0085; the server strips it
    expect(stripName("\ufeffAda")).toBe("\ufeffAda"); // JS trim() strips U+FEFF; the server keeps it
  });

  it("wants 1 to 200 characters, counted as code points", () => {
    expect(nameProblem("   ")).toMatch(/Required/);
    expect(nameProblem("x".repeat(200))).toBeNull();
    expect(nameProblem("x".repeat(201))).toMatch(/At most 200/);
    expect(nameProblem("😀".repeat(200))).toBeNull(); // 400 UTF-16 units, 200 characters
    expect(nameProblem(` ${"y".repeat(200)} `)).toBeNull();
  });

  it("checks only the fields given and returns them stripped", () => {
    expect(checkFields({ customer_name: " Ada ", product_name: "Lamp", status: "shipped" })).toEqual({
      value: { customer_name: "Ada", product_name: "Lamp", status: "shipped" },
      errors: {},
    });
    expect(checkFields({ status: "lost" }).errors).toEqual({ status: "Choose pending, shipped or delivered." });
    expect(checkFields({ product_name: "" }).errors).toHaveProperty("product_name");
  });

  it("maps the server's field errors to the form", () => {
    expect(serverFieldErrors({ customer_name: "too short", extra: "unknown field" }, "bad")).toEqual({
      customer_name: "too short",
      form: "extra: unknown field",
    });
    expect(serverFieldErrors({}, "nothing to change")).toEqual({ form: "nothing to change" });
  });
});

describe("relative time", () => {
  const now = Date.parse("2026-11-24T01:00:00.000Z");
  it("reads naturally", () => {
    expect(relativeTime("2026-11-24T00:59:58.000Z", now)).toBe("just now");
    expect(relativeTime("2026-11-24T00:59:30.000Z", now)).toBe("30 s ago");
    expect(relativeTime("2026-11-24T00:55:00.000Z", now)).toBe("5 min ago");
    expect(relativeTime("2026-11-23T22:00:00.000Z", now)).toBe("3 h ago");
    expect(relativeTime("2026-11-01T00:00:00.000Z", now)).toBe("2026-11-01");
  });
});
