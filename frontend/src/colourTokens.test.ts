/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";

// Every colour is a token: a custom property defined in a :root block. Anywhere else, a colour
// literal (hex, rgb/rgba, hsl/hsla) fails this test.

const COLOUR = /#[0-9a-fA-F]{3,8}\b|\b(?:rgba?|hsla?)\(/g;

/** Every stylesheet under src/, by path, as text. */
const SHEETS: Record<string, string> = import.meta.glob("./**/*.css", { query: "?raw", import: "default", eager: true });

/** The colour literals of `css` outside its token definitions, as "line: text". */
function strayColours(css: string): string[] {
  const found: string[] = [];
  let inRoot = false;
  const lines = css.replace(/\/\*[\s\S]*?\*\//g, (comment) => comment.replace(/[^\n]/g, " ")).split("\n");
  lines.forEach((line, index) => {
    if (/^\s*:root\s*\{/.test(line)) inRoot = true;
    const token = inRoot && /^\s*--[\w-]+\s*:/.test(line);
    if (!token && line.match(COLOUR)) found.push(`${index + 1}: ${line.trim()}`);
    if (inRoot && line.includes("}")) inRoot = false;
  });
  return found;
}

describe("colour tokens", () => {
  it("finds the stylesheets", () => {
    expect(Object.keys(SHEETS)).toEqual(expect.arrayContaining(["./styles.css", "./components/AgentPanel.css"]));
  });

  it.each(Object.entries(SHEETS))("%s has no colour outside the tokens", (_, css) => {
    expect(strayColours(css)).toEqual([]);
  });

  it("catches a literal in a rule, and not in a token definition or a comment", () => {
    const css = [
      ":root {",
      "  --flash: #fff1b8;",
      "  --shadow: 0 1px 2px rgba(15, 23, 42, 0.05);",
      "}",
      "/* was #ffffff */",
      ".a { color: #fff; }",
      ".b { background: hsl(0 0% 50%); }",
      ".c { color: var(--flash); }",
    ].join("\n");
    expect(strayColours(css)).toEqual(["6: .a { color: #fff; }", "7: .b { background: hsl(0 0% 50%); }"]);
  });
});
