/** A response's JSON body, or null when it has none or it is not JSON: a proxy's HTML error
 * page, an empty 502, a cut connection. Callers read fields from `recordOf` of it. */
export async function jsonOrNull(response: Response): Promise<unknown> {
  try {
    return (await response.json()) as unknown;
  } catch {
    return null;
  }
}

/** A JSON object's fields, or none when the value is not an object. */
export function recordOf(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
}
