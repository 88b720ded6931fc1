import type { CutoffPolicy } from "@bottlekit/budget-store";
import { Box, type Key, Text, useApp, useInput, useStdout } from "ink";
import {
  createElement as h,
  type ReactNode,
  useCallback,
  useEffect,
  useRef,
  useState,
} from "react";
import { bar, budgetLabel, duration, fit, percent, sparkline, tokens, usd } from "./format.ts";
import type { BottleRow, BottleState, DashboardSnapshot } from "./model.ts";

/** What the dashboard can do to a bottle. */
export interface DashboardActions {
  /** Records a cutoff with `policy` and signals the live session when a control socket exists. */
  cutOff(bottle: string, policy: CutoffPolicy): Promise<string>;
  restore(bottle: string): Promise<string>;
}

export interface DashboardProps {
  load: () => Promise<DashboardSnapshot>;
  actions: DashboardActions;
  /** Shown in the title: the store file or redacted URL. */
  storeLabel: string;
  /** False with NO_COLOR, TERM=dumb or when colour is off. */
  color: boolean;
  /** Poll interval in ms (default 500). */
  pollMs?: number;
  /** Whether live sessions can be frozen or killed (a control socket is available). */
  liveControl: boolean;
  /** Called with the exit code when the user quits (q: 0, Ctrl-C: 130). */
  onExit?: (code: number) => void;
}

type Mode =
  | { kind: "table" }
  | { kind: "filter"; text: string }
  | { kind: "confirm"; bottle: string; policy: CutoffPolicy }
  | { kind: "help" }
  | { kind: "approvals" };

const STATE_COLOR: Record<BottleState, string> = {
  running: "greenBright",
  active: "green",
  idle: "gray",
  "cut off": "red",
  frozen: "cyan",
  killed: "magenta",
};

const VERB: Record<CutoffPolicy, string> = { cutoff: "Cut off", freeze: "Freeze", kill: "Kill" };

interface Columns {
  bottle: number;
  state: number;
  tokens: number;
  budget: number;
  burn: number;
  cost: number;
  eta: number;
  last: number;
}

/** Column widths for a terminal `width` wide (80 is the smallest laid out in full). */
export function columns(width: number): Columns {
  const c: Columns = {
    bottle: 12,
    state: 7,
    tokens: 9,
    budget: 12,
    burn: 10,
    cost: 8,
    eta: 6,
    last: 7,
  };
  // 2 for the selection marker, 1 between columns.
  let spare = width - 2 - 7 - Object.values(c).reduce((a, b) => a + b, 0);
  const grow = (key: keyof Columns, max: number) => {
    const add = Math.max(0, Math.min(spare, max - c[key]));
    c[key] += add;
    spare -= add;
  };
  grow("bottle", 20);
  grow("burn", 15);
  grow("budget", 18);
  grow("last", 22);
  grow("bottle", 32);
  if (spare < 0) c.last = Math.max(0, c.last + spare);
  return c;
}

function useTerminalSize(): { width: number; height: number } {
  const { stdout } = useStdout();
  const read = () => ({ width: stdout.columns || 80, height: stdout.rows || 24 });
  const [size, setSize] = useState(read);
  useEffect(() => {
    const onResize = () => setSize({ width: stdout.columns || 80, height: stdout.rows || 24 });
    stdout.on("resize", onResize);
    return () => {
      stdout.off("resize", onResize);
    };
  }, [stdout]);
  return size;
}

function headerLine(c: Columns): string {
  return [
    "  ",
    fit("BOTTLE", c.bottle),
    fit("STATE", c.state),
    fit("TOKENS", c.tokens, "right"),
    fit("BUDGET", c.budget),
    fit(`BURN/${c.burn}m`, c.burn),
    fit("COST", c.cost, "right"),
    fit("ETA", c.eta, "right"),
    fit("LAST", c.last),
  ]
    .join(" ")
    .replace(/^ {3}/, "  ");
}

function lastText(row: BottleRow, width: number, now: number): string {
  const a = row.lastAction;
  if (a === undefined) return "-";
  const long = `${a.action} ${duration(now - a.at)} ago by ${a.by}`;
  return long.length <= width ? long : a.action;
}

function rowCells(row: BottleRow, c: Columns, now: number) {
  const binding = row.budgets[0];
  const budgetText =
    binding === undefined
      ? "-"
      : `${bar(binding.used, binding.limit, Math.max(1, c.budget - 5))} ${percent(binding.used, binding.limit)}`;
  const eta =
    row.state === "cut off" || row.state === "frozen" || row.state === "killed"
      ? "-"
      : binding !== undefined && binding.remaining <= 0
        ? "now"
        : row.exhaustsInMs === undefined
          ? "-"
          : duration(row.exhaustsInMs);
  return {
    bottle: fit(row.bottle, c.bottle),
    state: fit(row.state, c.state),
    tokens: fit(tokens(row.tokens, c.tokens), c.tokens, "right"),
    budget: fit(budgetText, c.budget),
    fraction: binding === undefined ? 0 : binding.limit > 0 ? binding.used / binding.limit : 1,
    burn: fit(sparkline(row.burn.slice(-c.burn)), c.burn),
    cost: fit(usd(row.costUsd, row.unpricedEvents > 0), c.cost, "right"),
    eta: fit(eta, c.eta, "right"),
    last: fit(lastText(row, c.last, now), c.last),
  };
}

const HELP_LINES = [
  "bottle dashboard: every bottle's spend, live from the budget store",
  "",
  "  ↑/↓        select a bottle (PgUp/PgDn: a page)",
  "  /          filter by bottle, agent or provider (Enter keeps it, Esc clears)",
  "  c          cut off the selected bottle: its next call gets 429 cut-off (asks first)",
  "  r          restore the selected bottle",
  "  f          freeze: recorded as a cutoff with the freeze policy (asks first)",
  "  k          kill: recorded as a cutoff with the kill policy (asks first)",
  "  a          the approvals queue",
  "  ?          this help (any key closes it)",
  "  q          quit (Ctrl-C: exit 130)",
  "",
  "Columns: TOKENS all time; BUDGET the budget nearest to spent (bar and %); BURN tokens",
  "per minute, oldest left; COST priced usage (+ when some calls have no price); ETA time",
  "until the budget is spent at the last 5 minutes' rate; LAST the latest enforcement action.",
];

/** The live dashboard. Polls `load` every `pollMs` and re-renders on changes and resizes. */
export function Dashboard(props: DashboardProps): ReactNode {
  const { exit } = useApp();
  const { width, height } = useTerminalSize();
  const [snapshot, setSnapshot] = useState<DashboardSnapshot | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [selected, setSelectedState] = useState<string | undefined>(undefined);
  const [filter, setFilterState] = useState("");
  const [mode, setModeState] = useState<Mode>({ kind: "table" });
  // Keys can arrive several to a chunk ("xq" from a fast typist or a paste): the handler reads
  // and writes these refs so each key sees the state the previous one left.
  const modeRef = useRef<Mode>(mode);
  const filterRef = useRef(filter);
  const selectedRef = useRef(selected);
  const setMode = (m: Mode) => {
    modeRef.current = m;
    setModeState(m);
  };
  const setFilter = (f: string) => {
    filterRef.current = f;
    setFilterState(f);
  };
  const setSelected = (b: string | undefined) => {
    selectedRef.current = b;
    setSelectedState(b);
  };
  const [status, setStatus] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const wake = useRef<(() => void) | undefined>(undefined);
  const pollMs = props.pollMs ?? 500;
  const { load } = props;

  useEffect(() => {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const tick = async () => {
      timer = undefined;
      try {
        const s = await load();
        if (stopped) return;
        setSnapshot(s);
        setError(undefined);
      } catch (e) {
        if (stopped) return;
        setError(e instanceof Error ? e.message : String(e));
      }
      if (!stopped) timer = setTimeout(tick, pollMs);
    };
    wake.current = () => {
      if (timer !== undefined) {
        clearTimeout(timer);
        void tick();
      }
    };
    void tick();
    return () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [load, pollMs]);

  const needle = mode.kind === "filter" ? mode.text : filter;
  const rows = (snapshot?.rows ?? []).filter(
    (r) =>
      needle === "" ||
      r.bottle.includes(needle) ||
      r.agents.some((a) => a.includes(needle)) ||
      r.providers.some((p) => p.includes(needle)),
  );
  const index = Math.max(
    0,
    rows.findIndex((r) => r.bottle === selected),
  );
  const current = rows[index];

  const quit = useCallback(
    (code: number) => {
      props.onExit?.(code);
      exit();
    },
    [exit, props.onExit],
  );

  const act = (what: () => Promise<string>) => {
    setBusy(true);
    what()
      .then((message) => setStatus(message))
      .catch((e: unknown) => setStatus(`failed: ${e instanceof Error ? e.message : String(e)}`))
      .finally(() => {
        setBusy(false);
        wake.current?.();
      });
  };

  const pageSize = Math.max(1, height - 7);

  const snapshotRef = useRef(snapshot);
  snapshotRef.current = snapshot;
  const visibleRows = (needleText: string) =>
    (snapshotRef.current?.rows ?? []).filter(
      (r) =>
        needleText === "" ||
        r.bottle.includes(needleText) ||
        r.agents.some((a) => a.includes(needleText)) ||
        r.providers.some((p) => p.includes(needleText)),
    );

  const handleKey = (input: string, key: Key) => {
    const mode = modeRef.current;
    const filter = filterRef.current;
    const rows = visibleRows(filter);
    const index = Math.max(
      0,
      rows.findIndex((r) => r.bottle === selectedRef.current),
    );
    const current = rows[index];
    if (key.ctrl && input === "c") {
      quit(130);
      return;
    }
    if (mode.kind === "help" || mode.kind === "approvals") {
      setMode({ kind: "table" });
      return;
    }
    if (mode.kind === "confirm") {
      if (input === "y" || input === "Y") {
        const { bottle, policy } = mode;
        act(() => props.actions.cutOff(bottle, policy));
      } else {
        setStatus("cancelled");
      }
      setMode({ kind: "table" });
      return;
    }
    if (mode.kind === "filter") {
      if (key.escape) {
        setFilter("");
        setMode({ kind: "table" });
      } else if (key.return) {
        setFilter(mode.text);
        setMode({ kind: "table" });
      } else if (key.backspace || key.delete) {
        setMode({ kind: "filter", text: mode.text.slice(0, -1) });
      } else if (input !== "" && !key.ctrl && !key.meta && /^[\w.@-]+$/.test(input)) {
        setMode({ kind: "filter", text: mode.text + input });
      }
      return;
    }
    const move = (to: number) => {
      const r = rows[Math.max(0, Math.min(rows.length - 1, to))];
      if (r !== undefined) setSelected(r.bottle);
    };
    if (key.upArrow) move(index - 1);
    else if (key.downArrow) move(index + 1);
    else if (key.pageUp) move(index - pageSize);
    else if (key.pageDown) move(index + pageSize);
    else if (input === "q") quit(0);
    else if (input === "?") setMode({ kind: "help" });
    else if (input === "a") setMode({ kind: "approvals" });
    else if (input === "/") setMode({ kind: "filter", text: "" });
    else if (key.escape) {
      setFilter("");
      setStatus(undefined);
    } else if (input === "c" || input === "f" || input === "k") {
      if (current === undefined) setStatus("no bottle selected");
      else if (busy) setStatus("busy: the last action is still running");
      else {
        const policy: CutoffPolicy = input === "c" ? "cutoff" : input === "f" ? "freeze" : "kill";
        setMode({ kind: "confirm", bottle: current.bottle, policy });
      }
    } else if (input === "r") {
      if (current === undefined) setStatus("no bottle selected");
      else {
        const bottle = current.bottle;
        act(() => props.actions.restore(bottle));
      }
    }
  };

  useInput((input: string, key: Key) => {
    const plain =
      !key.ctrl &&
      !key.meta &&
      !key.escape &&
      !key.return &&
      !key.tab &&
      !key.backspace &&
      !key.delete;
    if (plain && input.length > 1 && !input.includes("\u001b")) {
      for (const ch of input) handleKey(ch, { ...key, shift: false });
    } else {
      handleKey(input, key);
    }
  });

  const c = columns(width);
  const color = (name: string) => (props.color ? name : undefined);
  const now = snapshot?.at ?? 0;
  const title = fit(
    `bottle dashboard · ${snapshot === undefined ? "loading…" : `${rows.length}${needle ? `/${snapshot.rows.length}` : ""} bottles`} · ${props.storeLabel}${snapshot ? ` · ${new Date(snapshot.at).toISOString().slice(11, 19)}Z` : ""}`,
    width,
  );

  if (mode.kind === "help") {
    return h(
      Box,
      { flexDirection: "column", width },
      h(Text, { bold: true }, title),
      ...HELP_LINES.slice(0, Math.max(1, height - 3)).map((line, i) =>
        h(Text, { key: `help${i}` }, fit(line, width)),
      ),
      h(
        Text,
        { dimColor: props.color },
        fit(
          props.liveControl
            ? "c/f/k also reach live sessions: routes dropped (control socket), each bottle run told to cut off, freeze or stop. Press any key"
            : "no control socket reachable: c/f/k are recorded in the store and the gateway refuses the bottle's calls; live sessions are not signalled. Press any key",
          width,
        ),
      ),
    );
  }

  // Body: title, header, rows, detail, footer (status + keys).
  const visible = Math.max(1, height - 6);
  const start = Math.min(Math.max(0, index - visible + 1), Math.max(0, rows.length - visible));
  const shown = rows.slice(start, start + visible);
  const body: ReactNode[] = shown.map((row) => {
    const cells = rowCells(row, c, now);
    const isSel = current !== undefined && row.bottle === current.bottle;
    const barColor = cells.fraction >= 1 ? "red" : cells.fraction >= 0.8 ? "yellow" : "green";
    return h(
      Text,
      { key: row.bottle, inverse: isSel, wrap: "truncate" },
      isSel ? "> " : "  ",
      cells.bottle,
      " ",
      h(Text, { color: color(STATE_COLOR[row.state]) }, cells.state),
      " ",
      cells.tokens,
      " ",
      h(Text, { color: color(barColor) }, cells.budget),
      " ",
      h(Text, { color: color("cyan") }, cells.burn),
      " ",
      cells.cost,
      " ",
      cells.eta,
      " ",
      cells.last,
    );
  });
  if (snapshot !== undefined && rows.length === 0) {
    body.push(
      h(
        Text,
        { key: "empty" },
        fit(
          needle
            ? `no bottle matches "${needle}" (Esc clears the filter)`
            : "no usage yet: bottles appear with their first metered call",
          width,
        ),
      ),
    );
  }

  let detail = "";
  if (current !== undefined) {
    const b = current.budgets.map(budgetLabel).join("; ") || "no budget";
    const cut = current.cutoff
      ? ` · ${current.cutoff.policy} by ${current.cutoff.by}: ${current.cutoff.reason}`
      : "";
    const live =
      current.sessions === undefined
        ? ""
        : ` · ${current.sessions} live session${current.sessions === 1 ? "" : "s"}`;
    detail = `${current.bottle}: ${tokens(current.tokens, 15)} tokens, ${current.events} calls, ${Math.round(current.ratePerMin)}/min${live} · ${b}${cut}`;
  }

  let footer: ReactNode;
  if (mode.kind === "confirm") {
    footer = h(
      Text,
      { color: color("yellow"), bold: true },
      fit(`${VERB[mode.policy]} ${mode.bottle}? y to confirm, any other key cancels`, width),
    );
  } else if (mode.kind === "filter") {
    footer = h(Text, {}, fit(`filter: ${mode.text}▏ (Enter keeps, Esc clears)`, width));
  } else if (mode.kind === "approvals") {
    footer = h(
      Text,
      { color: color("yellow") },
      fit(
        snapshot?.approvals === undefined
          ? "approvals: this bottlekit has no approvals queue yet (any key returns)"
          : `approvals: ${snapshot.approvals} pending (any key returns)`,
        width,
      ),
    );
  } else {
    footer = h(
      Text,
      { color: color(error ? "red" : "white") },
      fit(error ? `store error: ${error}` : (status ?? ""), width),
    );
  }
  const keys = fit(
    width >= 96
      ? "↑↓ select  / filter  c cut off  r restore  f freeze  k kill  a approvals  ? help  q quit"
      : "↑↓ select / filter c cutoff r restore f freeze k kill a approvals ? help q quit",
    width,
  );

  return h(
    Box,
    { flexDirection: "column", width },
    h(Text, { bold: true, wrap: "truncate" }, title),
    h(Text, { dimColor: props.color, wrap: "truncate" }, fit(headerLine(c), width)),
    ...body,
    h(Text, { wrap: "truncate" }, fit(detail, width)),
    footer,
    h(Text, { dimColor: props.color, wrap: "truncate" }, keys),
  );
}
