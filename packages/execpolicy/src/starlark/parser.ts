/**
 * Recursive-descent parser for the Starlark subset of Codex `.rules` files:
 * assignments, expression statements, `for`, `if`, `def`/`return`, list/tuple/dict displays,
 * list comprehensions, calls with keyword arguments and `*args`/`**kwargs`, indexing, f-strings and
 * the usual operators.
 * Anything else is a syntax error with a line and column.
 */
import { StarlarkSyntaxError, type Token, tokenize } from "./lexer.ts";

export interface Pos {
  line: number;
  col: number;
}

export type Expr =
  | ({ t: "str"; v: string } & Pos)
  | ({ t: "fstr"; parts: (string | Expr)[] } & Pos)
  | ({ t: "int"; v: number } & Pos)
  | ({ t: "name"; name: string } & Pos)
  | ({ t: "list"; items: Expr[] } & Pos)
  | ({ t: "tuple"; items: Expr[] } & Pos)
  | ({ t: "dict"; entries: [Expr, Expr][] } & Pos)
  | ({ t: "comp"; elt: Expr; clauses: CompClause[] } & Pos)
  | ({
      t: "call";
      fn: Expr;
      args: Expr[];
      kwargs: [string, Expr][];
      /** `*xs`: unpacked after `args` (a list, tuple or dict's keys). */
      star?: Expr;
      /** `**d`: unpacked after `kwargs` (a dict with string keys). */
      starstar?: Expr;
    } & Pos)
  | ({ t: "index"; obj: Expr; index: Expr } & Pos)
  | ({ t: "attr"; obj: Expr; name: string } & Pos)
  | ({ t: "slice"; obj: Expr; start: Expr | undefined; end: Expr | undefined } & Pos)
  | ({ t: "bin"; op: string; left: Expr; right: Expr } & Pos)
  | ({ t: "unary"; op: string; operand: Expr } & Pos)
  | ({ t: "cond"; test: Expr; ifTrue: Expr; orelse: Expr } & Pos)
  | ({ t: "lambda"; params: Param[]; body: Expr } & Pos);

/**
 * A function parameter: a name, its kind and an optional default (evaluated when the function is
 * created). `pos` is filled by position or keyword; `kwonly` follows `*` or `*args` and is filled by
 * keyword only; `args` (`*name`) collects extra positional arguments into a tuple; `kwargs`
 * (`**name`) collects extra keyword arguments into a dict.
 */
export interface Param {
  name: string;
  kind: "pos" | "kwonly" | "args" | "kwargs";
  default?: Expr;
}

export type CompClause = { kind: "for"; target: Target; iter: Expr } | { kind: "if"; cond: Expr };

export type Target =
  | ({ t: "name"; name: string } & Pos)
  | ({ t: "tuple"; items: Target[] } & Pos)
  | ({ t: "index"; obj: Expr; index: Expr } & Pos);

export type Stmt =
  | ({ t: "expr"; expr: Expr } & Pos)
  | ({ t: "assign"; target: Target; op: "=" | "+="; value: Expr } & Pos)
  | ({ t: "for"; target: Target; iter: Expr; body: Stmt[] } & Pos)
  | ({ t: "if"; cond: Expr; body: Stmt[]; orelse: Stmt[] } & Pos)
  | ({ t: "def"; name: string; params: Param[]; body: Stmt[] } & Pos)
  | ({ t: "return"; value?: Expr } & Pos)
  | ({ t: "pass" | "break" | "continue" } & Pos);

const RESERVED = new Set([
  "for",
  "in",
  "if",
  "else",
  "elif",
  "def",
  "return",
  "pass",
  "break",
  "continue",
  "and",
  "or",
  "not",
  "load",
  "lambda",
]);

export function parseModule(src: string): Stmt[] {
  return new Parser(tokenize(src)).module();
}

class Parser {
  private i = 0;
  constructor(private readonly toks: Token[]) {}

  private peek(offset = 0): Token {
    return this.toks[Math.min(this.i + offset, this.toks.length - 1)] as Token;
  }
  private next(): Token {
    const t = this.peek();
    if (this.i < this.toks.length - 1) this.i++;
    return t;
  }
  private isOp(v: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.kind === "op" && t.value === v;
  }
  private isName(v: string): boolean {
    const t = this.peek();
    return t.kind === "name" && t.value === v;
  }
  private fail(message: string, t: Token = this.peek()): never {
    throw new StarlarkSyntaxError(message, t.line, t.col);
  }
  private describe(t: Token): string {
    if (t.kind === "eof") return "end of file";
    if (t.kind === "newline") return "end of line";
    if (t.kind === "indent") return "unexpected indentation";
    if (t.kind === "dedent") return "dedent";
    if (t.kind === "string" || t.kind === "fstring") return "string literal";
    return `'${t.value}'`;
  }
  private expectOp(v: string): Token {
    if (!this.isOp(v)) this.fail(`expected '${v}', found ${this.describe(this.peek())}`);
    return this.next();
  }
  private expectKind(kind: Token["kind"], what: string): Token {
    if (this.peek().kind !== kind)
      this.fail(`expected ${what}, found ${this.describe(this.peek())}`);
    return this.next();
  }

  module(): Stmt[] {
    const out: Stmt[] = [];
    while (this.peek().kind !== "eof") {
      if (this.peek().kind === "newline") {
        this.next();
        continue;
      }
      if (this.peek().kind === "indent") this.fail("unexpected indentation");
      out.push(...this.statement());
    }
    return out;
  }

  private block(): Stmt[] {
    this.expectOp(":");
    if (this.peek().kind !== "newline") return this.simpleLine();
    this.next();
    this.expectKind("indent", "an indented block");
    const body: Stmt[] = [];
    while (this.peek().kind !== "dedent" && this.peek().kind !== "eof") {
      if (this.peek().kind === "newline") {
        this.next();
        continue;
      }
      body.push(...this.statement());
    }
    if (this.peek().kind === "dedent") this.next();
    return body;
  }

  private statement(): Stmt[] {
    const t = this.peek();
    const pos = { line: t.line, col: t.col };
    if (t.kind === "name") {
      switch (t.value) {
        case "for": {
          this.next();
          const target = this.target();
          if (!this.isName("in")) this.fail("expected 'in'");
          this.next();
          const iter = this.expression();
          return [{ t: "for", target, iter, body: this.block(), ...pos }];
        }
        case "if":
          return [this.ifStatement()];
        case "def": {
          this.next();
          const name = this.expectKind("name", "a function name").value;
          this.expectOp("(");
          const params = this.params(")");
          return [{ t: "def", name, params, body: this.block(), ...pos }];
        }
        case "load":
          if (this.isOp("(", 1))
            this.fail("load() is not supported: policy files cannot import other files");
          break;
        case "elif":
        case "else":
          this.fail(`'${t.value}' without a matching 'if'`);
      }
    }
    return this.simpleLine();
  }

  private ifStatement(): Stmt {
    const t = this.next(); // if / elif
    const cond = this.expression();
    const body = this.block();
    let orelse: Stmt[] = [];
    if (this.isName("elif")) orelse = [this.ifStatement()];
    else if (this.isName("else")) {
      this.next();
      orelse = this.block();
    }
    return { t: "if", cond, body, orelse, line: t.line, col: t.col };
  }

  /** small statements separated by ';' up to the end of line */
  private simpleLine(): Stmt[] {
    const out: Stmt[] = [this.smallStatement()];
    while (this.isOp(";")) {
      this.next();
      if (this.peek().kind === "newline" || this.peek().kind === "eof") break;
      out.push(this.smallStatement());
    }
    if (this.peek().kind !== "eof") this.expectKind("newline", "end of line");
    return out;
  }

  private smallStatement(): Stmt {
    const t = this.peek();
    const pos = { line: t.line, col: t.col };
    if (t.kind === "name") {
      if (t.value === "pass" || t.value === "break" || t.value === "continue") {
        this.next();
        return { t: t.value, ...pos };
      }
      if (t.value === "return") {
        this.next();
        if (this.peek().kind === "newline" || this.peek().kind === "eof" || this.isOp(";"))
          return { t: "return", ...pos };
        return { t: "return", value: this.expression(), ...pos };
      }
    }
    const expr = this.expression();
    if (this.isOp("=") || this.isOp("+=")) {
      const op = this.next().value as "=" | "+=";
      const target = this.toTarget(expr, op === "+=");
      return { t: "assign", target, op, value: this.expression(), ...pos };
    }
    if (
      this.peek().kind === "op" &&
      /^(-|\*|\/|%|\/\/|\*\*|\||&|<<|>>)=$/.test(this.peek().value)
    ) {
      this.fail(`augmented assignment '${this.peek().value}' is not supported`);
    }
    return { t: "expr", expr, ...pos };
  }

  private toTarget(e: Expr, single: boolean): Target {
    if (e.t === "name" || e.t === "index") return e;
    if (!single && (e.t === "tuple" || e.t === "list")) {
      return {
        t: "tuple",
        items: e.items.map((x) => this.toTarget(x, false)),
        line: e.line,
        col: e.col,
      };
    }
    throw new StarlarkSyntaxError(
      "cannot assign to this expression (only names and tuples of names)",
      e.line,
      e.col,
    );
  }

  private target(): Target {
    const first = this.peek();
    const items: Target[] = [];
    do {
      if (this.isOp(",")) this.next();
      if (this.isOp("(")) {
        this.next();
        items.push(this.target());
        this.expectOp(")");
      } else {
        const n = this.expectKind("name", "a loop variable");
        if (RESERVED.has(n.value)) this.fail(`'${n.value}' cannot be a variable name`, n);
        items.push({ t: "name", name: n.value, line: n.line, col: n.col });
      }
    } while (this.isOp(","));
    return items.length === 1
      ? (items[0] as Target)
      : { t: "tuple", items, line: first.line, col: first.col };
  }

  /** expression list: a, b -> tuple */
  private expression(): Expr {
    const first = this.test();
    if (!this.isOp(",")) return first;
    const items = [first];
    while (this.isOp(",")) {
      this.next();
      if (this.endOfExprList()) break;
      items.push(this.test());
    }
    return { t: "tuple", items, line: first.line, col: first.col };
  }

  private endOfExprList(): boolean {
    const t = this.peek();
    return (
      t.kind === "newline" ||
      t.kind === "eof" ||
      (t.kind === "op" && ["=", ")", "]", "}", ":", ";"].includes(t.value))
    );
  }

  /**
   * Parameters up to and including `close` (`)` for def, `:` for lambda), checked as Starlark does:
   * positional parameters (those without a default first), then at most one `*` or `*args`, then
   * keyword-only parameters (defaults in any order), then at most one `**kwargs`, last. A bare `*`
   * must be followed by a named parameter.
   */
  private params(close: ")" | ":"): Param[] {
    const params: Param[] = [];
    let star: Token | undefined; // the `*` or `*args` seen, if any
    let bareStar: Token | undefined; // a bare `*` not yet followed by a named parameter
    let starstar: Param | undefined;
    const name = (what: string): Token => {
      const t = this.expectKind("name", what);
      if (params.some((x) => x.name === t.value))
        throw new StarlarkSyntaxError(`duplicated parameter name '${t.value}'`, t.line, t.col);
      return t;
    };
    while (!this.isOp(close)) {
      const t = this.peek();
      if (starstar)
        this.fail(`'**${starstar.name}' must be the last parameter; move it to the end`, t);
      if (this.isOp("*")) {
        if (star) this.fail("only one '*' or '*args' is allowed in a parameter list", t);
        this.next();
        star = t;
        if (this.peek().kind === "name")
          params.push({ name: name("a parameter name after '*'").value, kind: "args" });
        else bareStar = t;
      } else if (this.isOp("**")) {
        if (bareStar) break;
        this.next();
        starstar = { name: name("a parameter name after '**'").value, kind: "kwargs" };
        params.push(starstar);
      } else {
        const p = name("a parameter name").value;
        bareStar = undefined;
        const kind = star ? "kwonly" : "pos";
        if (this.isOp("=")) {
          this.next();
          params.push({ name: p, kind, default: this.test() });
        } else {
          // keyword-only parameters may be required after optional ones; positional ones may not
          if (kind === "pos" && params.some((x) => x.default !== undefined))
            throw new StarlarkSyntaxError(
              `parameter '${p}' without a default follows a parameter with one`,
              t.line,
              t.col,
            );
          params.push({ name: p, kind });
        }
      }
      if (!this.isOp(close)) this.expectOp(",");
    }
    if (bareStar)
      throw new StarlarkSyntaxError(
        "a bare '*' must be followed by a keyword-only parameter (write '*args' to accept extra positional arguments)",
        bareStar.line,
        bareStar.col,
      );
    this.next();
    return params;
  }

  private test(): Expr {
    // Fast path: a literal or a name followed by a delimiter is just that atom. Most tokens of a
    // rules file are list items like these, and skipping the dozen precedence levels below for
    // them halves the parse of a large file. The result is the same node the full descent builds.
    const t = this.peek();
    if (t.kind === "string" || t.kind === "int" || t.kind === "name") {
      const n = this.peek(1);
      if (
        (n.kind === "op" && (n.value === "," || n.value === "]" || n.value === ")")) ||
        n.kind === "newline"
      ) {
        if (t.kind === "string") {
          this.next();
          return { t: "str", v: t.value, line: t.line, col: t.col };
        }
        if (t.kind === "int") {
          this.next();
          return { t: "int", v: Number(t.value), line: t.line, col: t.col };
        }
        if (!RESERVED.has(t.value)) {
          this.next();
          return { t: "name", name: t.value, line: t.line, col: t.col };
        }
      }
    }
    if (this.isName("lambda")) {
      const t = this.next();
      const params = this.params(":");
      // the body is a single expression (it may itself be a lambda or a conditional)
      return { t: "lambda", params, body: this.test(), line: t.line, col: t.col };
    }
    const e = this.orExpr();
    if (this.isName("if")) {
      this.next();
      const test = this.orExpr();
      if (!this.isName("else")) this.fail("expected 'else' in conditional expression");
      this.next();
      const orelse = this.test();
      return { t: "cond", test, ifTrue: e, orelse, line: e.line, col: e.col };
    }
    return e;
  }

  private orExpr(): Expr {
    let left = this.andExpr();
    while (this.isName("or")) {
      this.next();
      left = { t: "bin", op: "or", left, right: this.andExpr(), line: left.line, col: left.col };
    }
    return left;
  }
  private andExpr(): Expr {
    let left = this.notExpr();
    while (this.isName("and")) {
      this.next();
      left = { t: "bin", op: "and", left, right: this.notExpr(), line: left.line, col: left.col };
    }
    return left;
  }
  private notExpr(): Expr {
    if (this.isName("not")) {
      const t = this.next();
      return { t: "unary", op: "not", operand: this.notExpr(), line: t.line, col: t.col };
    }
    return this.comparison();
  }
  private comparison(): Expr {
    let left = this.arith();
    for (;;) {
      const t = this.peek();
      let op: string | undefined;
      if (t.kind === "op" && ["==", "!=", "<", ">", "<=", ">="].includes(t.value)) {
        this.next();
        op = t.value;
      } else if (this.isName("in")) {
        this.next();
        op = "in";
      } else if (
        this.isName("not") &&
        this.peek(1).kind === "name" &&
        this.peek(1).value === "in"
      ) {
        this.next();
        this.next();
        op = "not in";
      }
      if (op === undefined) return left;
      left = { t: "bin", op, left, right: this.arith(), line: left.line, col: left.col };
    }
  }
  private arith(): Expr {
    let left = this.term();
    while (this.isOp("+") || this.isOp("-")) {
      const op = this.next().value;
      left = { t: "bin", op, left, right: this.term(), line: left.line, col: left.col };
    }
    return left;
  }
  private term(): Expr {
    let left = this.unary();
    while (this.isOp("*") || this.isOp("%") || this.isOp("//") || this.isOp("/")) {
      const op = this.next().value;
      left = { t: "bin", op, left, right: this.unary(), line: left.line, col: left.col };
    }
    if (this.isOp("**") || this.isOp("|") || this.isOp("&") || this.isOp("^")) {
      this.fail(`operator '${this.peek().value}' is not supported in policy files`);
    }
    return left;
  }
  private unary(): Expr {
    if (this.isOp("-") || this.isOp("+")) {
      const t = this.next();
      return { t: "unary", op: t.value, operand: this.unary(), line: t.line, col: t.col };
    }
    return this.postfix();
  }
  private postfix(): Expr {
    let e = this.atom();
    for (;;) {
      if (this.isOp("(")) {
        const open = this.next();
        const args: Expr[] = [];
        const kwargs: [string, Expr][] = [];
        // Starlark's order: positional, keyword, at most one *args, at most one **kwargs
        let star: Expr | undefined;
        let starstar: Expr | undefined;
        while (!this.isOp(")")) {
          if (this.isOp("*")) {
            if (star || starstar)
              this.fail("only one *args is allowed in a call, and it must come before **kwargs");
            this.next();
            star = this.test();
          } else if (this.isOp("**")) {
            if (starstar) this.fail("only one **kwargs is allowed in a call");
            this.next();
            starstar = this.test();
          } else if (this.peek().kind === "name" && this.isOp("=", 1)) {
            if (star || starstar)
              this.fail("keyword argument follows *args or **kwargs; move it before them");
            const k = this.next().value;
            this.next();
            if (kwargs.some(([n]) => n === k)) this.fail(`keyword argument '${k}' repeated`);
            kwargs.push([k, this.test()]);
          } else {
            if (star || starstar)
              this.fail("positional argument follows *args or **kwargs; move it before them");
            if (kwargs.length > 0) this.fail("positional argument follows keyword argument");
            args.push(this.test());
          }
          if (!this.isOp(")")) this.expectOp(",");
        }
        this.next();
        e = {
          t: "call",
          fn: e,
          args,
          kwargs,
          ...(star ? { star } : {}),
          ...(starstar ? { starstar } : {}),
          line: open.line === e.line ? e.line : e.line,
          col: e.col,
        };
      } else if (this.isOp("[")) {
        this.next();
        const start = this.isOp(":") ? undefined : this.test();
        if (this.isOp(":")) {
          this.next();
          const end = this.isOp("]") ? undefined : this.test();
          if (this.isOp(":")) this.fail("slice steps are not supported");
          this.expectOp("]");
          e = { t: "slice", obj: e, start, end, line: e.line, col: e.col };
        } else {
          this.expectOp("]");
          e = { t: "index", obj: e, index: start as Expr, line: e.line, col: e.col };
        }
      } else if (this.isOp(".")) {
        const dot = this.next();
        const name = this.expectKind("name", "a method name after '.'");
        e = { t: "attr", obj: e, name: name.value, line: dot.line, col: dot.col };
      } else return e;
    }
  }
  private atom(): Expr {
    const t = this.peek();
    const pos = { line: t.line, col: t.col };
    switch (t.kind) {
      case "string":
      case "fstring": {
        const expr: Expr = this.stringLiteral();
        // adjacent string literals are not concatenated in Starlark
        if (this.peek().kind === "string" || this.peek().kind === "fstring") {
          this.fail("implicit string concatenation is not allowed; use '+'");
        }
        return expr;
      }
      case "int":
        this.next();
        return { t: "int", v: Number(t.value), ...pos };
      case "name":
        if (RESERVED.has(t.value) && t.value !== "load")
          this.fail(`unexpected keyword '${t.value}'`);
        this.next();
        return { t: "name", name: t.value, ...pos };
      case "op":
        if (t.value === "[") {
          this.next();
          if (this.isOp("]")) {
            this.next();
            return { t: "list", items: [], ...pos };
          }
          const first = this.test();
          if (this.isName("for")) {
            const clauses = this.compClauses();
            this.expectOp("]");
            return { t: "comp", elt: first, clauses, ...pos };
          }
          const items = [first];
          while (this.isOp(",")) {
            this.next();
            if (this.isOp("]")) break;
            items.push(this.test());
          }
          this.expectOp("]");
          return { t: "list", items, ...pos };
        }
        if (t.value === "(") {
          this.next();
          if (this.isOp(")")) {
            this.next();
            return { t: "tuple", items: [], ...pos };
          }
          const first = this.test();
          if (this.isName("for"))
            this.fail("generator expressions are not supported; use a list comprehension");
          if (this.isOp(")")) {
            this.next();
            return first;
          }
          const items = [first];
          while (this.isOp(",")) {
            this.next();
            if (this.isOp(")")) break;
            items.push(this.test());
          }
          this.expectOp(")");
          return { t: "tuple", items, ...pos };
        }
        if (t.value === "{") {
          this.next();
          const entries: [Expr, Expr][] = [];
          while (!this.isOp("}")) {
            const k = this.test();
            this.expectOp(":");
            entries.push([k, this.test()]);
            if (this.isName("for")) this.fail("dict comprehensions are not supported");
            if (!this.isOp("}")) this.expectOp(",");
          }
          this.next();
          return { t: "dict", entries, ...pos };
        }
        break;
    }
    this.fail(`unexpected ${this.describe(t)}`);
  }

  private compClauses(): CompClause[] {
    const clauses: CompClause[] = [];
    while (this.isName("for") || this.isName("if")) {
      if (this.isName("for")) {
        this.next();
        const target = this.target();
        if (!this.isName("in")) this.fail("expected 'in'");
        this.next();
        clauses.push({ kind: "for", target, iter: this.orExpr() });
      } else {
        this.next();
        clauses.push({ kind: "if", cond: this.orExpr() });
      }
    }
    return clauses;
  }

  private stringLiteral(): Expr {
    const t = this.next();
    if (t.kind === "string") return { t: "str", v: t.value, line: t.line, col: t.col };
    // f-string: split into literal parts and {expr} parts
    const parts: (string | Expr)[] = [];
    const s = t.value;
    let lit = "";
    let k = 0;
    while (k < s.length) {
      const c = s[k] as string;
      if (c === "{" && s[k + 1] === "{") {
        lit += "{";
        k += 2;
      } else if (c === "}" && s[k + 1] === "}") {
        lit += "}";
        k += 2;
      } else if (c === "{") {
        const end = s.indexOf("}", k);
        if (end < 0) this.fail("unterminated '{' in f-string", t);
        const inner = s.slice(k + 1, end);
        if (lit) parts.push(lit);
        lit = "";
        let sub: Stmt[];
        try {
          sub = parseModule(inner);
        } catch {
          this.fail(`invalid expression '{${inner}}' in f-string`, t);
        }
        const only = sub[0];
        if (sub.length !== 1 || only === undefined || only.t !== "expr")
          this.fail(`invalid expression '{${inner}}' in f-string`, t);
        parts.push(relocate(only.expr, t));
        k = end + 1;
      } else if (c === "}") {
        this.fail("single '}' is not allowed in f-string", t);
      } else {
        lit += c;
        k++;
      }
    }
    if (lit) parts.push(lit);
    return { t: "fstr", parts, line: t.line, col: t.col };
  }
}

/** f-string sub-expressions report the position of the f-string itself. */
function relocate(e: Expr, at: Pos): Expr {
  return JSON.parse(JSON.stringify(e), (key, value) =>
    key === "line" ? at.line : key === "col" ? at.col : value,
  ) as Expr;
}
