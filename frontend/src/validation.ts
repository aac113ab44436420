// Client-side checks that mirror the server's (backend/orders_live/model.py):
// names are stripped of surrounding whitespace and must then be 1 to 200 characters;
// the status is one of pending, shipped, delivered.

import { isStatus } from "./protocol";

export const MAX_NAME_LENGTH = 200;

// The server strips the characters with the Unicode White_Space property (pydantic-core uses
// Rust's str::trim). JavaScript's String.prototype.trim differs: it also strips U+FEFF and
// keeps U+0085, so the set is spelled out here.
const WS = "\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const EDGES = new RegExp(`^[${WS}]+|[${WS}]+$`, "gu");

export function stripName(value: string): string {
  return value.replace(EDGES, "");
}

/** Length in code points, as the server counts. */
export function nameLength(value: string): number {
  return [...value].length;
}

export function nameProblem(raw: string): string | null {
  const name = stripName(raw);
  if (name.length === 0) return "Required: enter at least 1 character.";
  const length = nameLength(name);
  if (length > MAX_NAME_LENGTH) return `At most ${MAX_NAME_LENGTH} characters (this has ${length}).`;
  return null;
}

export type FieldErrors = Partial<Record<"customer_name" | "product_name" | "status" | "form", string>>;

export interface Checked<T> {
  value: T;
  errors: FieldErrors;
}

/** Checks the fields present in `fields` (a create sends all three, an edit only what changed). */
export function checkFields<T extends { customer_name?: string; product_name?: string; status?: string }>(
  fields: T,
): Checked<T> {
  const errors: FieldErrors = {};
  const value = { ...fields };
  for (const name of ["customer_name", "product_name"] as const) {
    const raw = fields[name];
    if (raw === undefined) continue;
    const problem = nameProblem(raw);
    if (problem !== null) errors[name] = problem;
    (value as Record<string, unknown>)[name] = stripName(raw);
  }
  if (fields.status !== undefined && !isStatus(fields.status)) {
    errors.status = "Choose pending, shipped or delivered.";
  }
  return { value, errors };
}

export function hasErrors(errors: FieldErrors): boolean {
  return Object.keys(errors).length > 0;
}

/** The server's per-field errors (`fields` of a 422), keyed as the form's fields. */
export function serverFieldErrors(fields: Record<string, string>, message: string): FieldErrors {
  const errors: FieldErrors = {};
  const rest: string[] = [];
  for (const [name, problem] of Object.entries(fields)) {
    if (name === "customer_name" || name === "product_name" || name === "status") errors[name] = problem;
    else rest.push(`${name}: ${problem}`);
  }
  if (rest.length > 0 || Object.keys(errors).length === 0) {
    errors.form = rest.length > 0 ? rest.join("; ") : message;
  }
  return errors;
}
