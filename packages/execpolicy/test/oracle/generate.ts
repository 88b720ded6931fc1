/**
 * A grammar-based generator of bash scripts for the real-bash oracle. It mixes ordinary commands
 * with every construct issue 16 found escaping: code run while expanding words (arithmetic,
 * subscripts, indirection, @P), state that changes what later words run (BASH_CMDS, hash -p,
 * enable, aliases, dangerous variables by any spelling), run-time options of find/xargs, shell
 * start-up, exec-capable options, write-then-run, heredoc backticks — plus wrappers, nested
 * shells, eval and every kind of compound command.
 *
 * Programs: real tools that cannot reach the network, and recording stubs (see sandbox.ts) for
 * everything the policies forbid or do not list.
 */
import fc from "fast-check";

/** Commands run by real programs (or builtins) that the oracle policy allows. */
const ALLOWED = [
  "ls",
  "ls -a",
  "cat f.txt",
  "echo hi",
  "printf '%s\\n' a b",
  "grep -c a f.txt",
  "head -n 1 f.txt",
  "wc -l f.txt",
  "sort f.txt",
  "true",
  "false",
  "pwd",
  ":",
  "tr a b < f.txt",
  "seq 2",
  "basename /a/b",
  "id -u",
  "test -f f.txt",
  "[ -n x ]",
  "git status",
  "npm test",
  "make",
  "cut -c1 f.txt",
  "uniq f.txt",
];
/** Forbidden by the oracle policies (all stubs). */
const FORBIDDEN = ["curl -s x", "rm -rf d", "git push", "sudo ls", "wget x", "git -C . push"];
/** Not listed by the allowlist policy (stubs, or harmless real tools). */
const UNLISTED = ["uploader", "python3 -c 1", "rm f.txt", "evil", "npm publish", "git commit"];

const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** A word for an argument position. */
const word: fc.Arbitrary<string> = fc.constantFrom(
  "a",
  "f.txt",
  "'lit'",
  '"dq"',
  "$x",
  '"$x"',
  "${x}",
  "${x:-curl}",
  "$(echo a)",
  "`echo a`",
  "$((1+2))",
  "$((x))",
  "$[x]",
  "${!x}",
  "${x@P}",
  "${x:1}",
  "${x:o}",
  "${a[x]}",
  "${#x}",
  "{a,b}",
  "*",
  "$'\\x63url'",
  "c''url",
  "-exec",
  "--pre=curl",
  "$(curl -s x)",
  "${y:=a[\\$(curl -s x)]}",
);

/** Payload values: strings that run code when bash evaluates them as arithmetic or prompts. */
const payload = fc.constantFrom(
  "'a[$(curl -s x)]'",
  "'$(curl -s x)'",
  "'`curl -s x`'",
  "curl",
  "push",
  "-exec",
  "-delete",
  "/tmp/orc/stubs/curl",
  "1",
  "'a[$(echo a >&2)]'",
);

const assignment: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(fc.constantFrom("x", "o", "y", "a[1]", "n"), payload).map(([n, v]) => `${n}=${v}`),
  fc.constantFrom(
    "declare -n r=x",
    "declare -i n",
    "export x=1",
    "export 'PATH=/tmp/orc/stubs:/usr/bin:/bin'",
    "PATH=/tmp/orc/stubs:/usr/bin:/bin",
    "read x <<< curl",
    "read -r x <<< 'a[$(curl -s x)]'",
    "printf -v x %s curl",
    "printf -v 'a[$(curl -s x)]' %s 1",
    "for x in curl; do :; done",
    "x+=url",
    "BASH_CMDS[ls]=/tmp/orc/stubs/curl",
    "BASH_CMDS[cat]=/tmp/orc/stubs/curl",
    "BASH_ALIASES[ls]=curl",
    "hash -p /tmp/orc/stubs/curl ls",
    "enable -n echo",
    "enable -n printf",
    "alias ls='curl -s x'",
    "shopt -s expand_aliases",
    "PS4='$(curl -s x)'",
    "set -x",
    "unset 'a[$(curl -s x)]'",
    "let x",
    "let 'y=x+1'",
    "(( x ))",
    "[[ -v a[x] ]]",
    "[[ $x -eq 1 ]]",
    "test -v 'a[$(curl -s x)]'",
    "declare -i n; n=x",
    "mapfile -C 'curl -s x' -c 1 l < f.txt",
    "GIT_DIR=/tmp git status",
    "trap 'curl -s x' EXIT",
    "x=$(curl -s x)",
    ": ${x:=curl}",
    "cd .",
  ),
);

/** A simple command, maybe with prefix assignments, wrappers, arguments and redirects. */
const simple: fc.Arbitrary<string> = fc
  .tuple(
    fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...ALLOWED) },
      { weight: 2, arbitrary: fc.constantFrom(...FORBIDDEN) },
      { weight: 2, arbitrary: fc.constantFrom(...UNLISTED) },
      {
        weight: 3,
        arbitrary: fc.constantFrom(
          "$x",
          "$x -s x",
          '"$x" -s x',
          "$(echo curl) -s x",
          "find . -maxdepth 0 $x curl \\;",
          "find . -maxdepth 0 -exec ls \\;",
          "find . -maxdepth 0 -exec curl -s x \\;",
          "find . -maxdepth 0 -{exec,ok} curl \\;",
          "echo -exec curl \\; | xargs find . -maxdepth 0",
          "echo curl | xargs",
          "echo curl | xargs -i {} -s x",
          "echo x | xargs -i curl {}",
          "echo x | xargs -e curl",
          "echo x | xargs -l curl",
          "echo x | xargs --replace curl {}",
          "echo push | xargs git",
          "echo a | xargs echo",
          "echo a | xargs -I{} echo {}",
          "echo a | sed 'e curl -s x'",
          "echo a | sed 's/a/b/'",
          "awk 'BEGIN{system(\"curl -s x\")}'",
          "awk '{print $1}' f.txt",
          "rg --pre curl a f.txt",
          "sort --compress-program=curl f.txt",
          "echo curl -s x > run.sh; bash run.sh",
          "echo curl -s x > run.sh; . ./run.sh",
          "printf 'curl -s x' > r; chmod +x r; ./r",
          "echo 'curl -s x' >> .bashrc; bash -i -c :",
          "bash --rcfile .bashrc -c :",
          "BASH_ENV=.bashrc bash -c :",
          "bash <(echo curl -s x)",
          "source <(echo curl -s x)",
          "cat <<EOF\n`curl -s x`\nEOF",
          "cat <<'EOF'\n`curl -s x`\nEOF",
          "cat <<EOF\n$((x))\nEOF",
          "bash <<'EOF'\ncurl -s x\nEOF",
          "bash <<'EOF'\nls\nEOF",
          "echo ${!x}",
          "echo ${x@P}",
          "echo $((x))",
          "echo ${x:o}",
          "exec 3<>/dev/tcp/127.0.0.1/9; echo >&3",
          "env $x",
          "command -p $x",
          'eval "$x"',
          "ls | xargs $x",
        ),
      },
    ),
    fc.array(word, { maxLength: 2 }),
    fc.constantFrom("", "", "", " > out.txt", " 2>/dev/null", " < f.txt", " > .git/config"),
  )
  .map(([cmd, args, redirect]) =>
    cmd.includes("\n") || cmd.includes(";") || cmd.includes("|")
      ? cmd
      : `${[cmd, ...args].join(" ")}${redirect}`,
  );

/** Wrappers put in front of a simple command (they take the rest of the line). */
const wrapper = fc.constantFrom(
  "env A=1 ",
  "env LD_PRELOAD=/tmp/x.so ",
  "timeout 5 ",
  "nice ",
  "command ",
  "builtin ",
  "sudo ",
  "xargs -a f.txt ",
  "exec ",
  "",
  "",
  "",
);

type Tree = { script: string };

const { script } = fc.letrec<Tree>((tie) => {
  const sub = tie("script");
  return {
    script: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      { weight: 6, arbitrary: fc.tuple(wrapper, simple).map(([w, c]) => `${w}${c}`) },
      { weight: 3, arbitrary: assignment },
      {
        weight: 4,
        arbitrary: fc
          .tuple(sub, fc.constantFrom("; ", " && ", " || ", " | ", "\n"), sub)
          .map(([a, op, b]) => `${a}${op}${b}`),
      },
      { weight: 1, arbitrary: sub.map((a) => `(${a})`) },
      { weight: 1, arbitrary: sub.map((a) => `{ ${a}; }`) },
      { weight: 1, arbitrary: sub.map((a) => `echo "$(${a})"`) },
      { weight: 1, arbitrary: sub.map((a) => `echo \`${a.replaceAll("`", "")}\``) },
      { weight: 1, arbitrary: sub.map((a) => `bash -c ${quote(a)}`) },
      { weight: 1, arbitrary: sub.map((a) => `sh -c ${quote(a)}`) },
      { weight: 1, arbitrary: sub.map((a) => `eval ${quote(a)}`) },
      { weight: 1, arbitrary: sub.map((a) => `f() { ${a}; }; f`) },
      { weight: 1, arbitrary: sub.map((a) => `ls() { ${a}; }; ls`) },
      { weight: 1, arbitrary: fc.tuple(sub, sub).map(([a, b]) => `if ${a}; then ${b}; fi`) },
      { weight: 1, arbitrary: sub.map((a) => `for i in 1 2; do ${a}; done`) },
      { weight: 1, arbitrary: sub.map((a) => `while false; do ${a}; done`) },
      { weight: 1, arbitrary: sub.map((a) => `case x in x) ${a};; esac`) },
      { weight: 1, arbitrary: sub.map((a) => `! ${a}`) },
      { weight: 1, arbitrary: sub.map((a) => `${a} &\nwait`) },
      { weight: 1, arbitrary: sub.map((a) => `trap ${quote(a)} EXIT`) },
      { weight: 1, arbitrary: sub.map((a) => `cat <(${a})`) },
      { weight: 1, arbitrary: sub.map((a) => `bash <<'EOS'\n${a}\nEOS`) },
      { weight: 1, arbitrary: sub.map((a) => `cat <<EOS\n\`${a.replaceAll("`", "")}\`\nEOS`) },
      {
        weight: 1,
        arbitrary: sub.map((a) => `find . -maxdepth 0 -exec bash -c ${quote(a)} \\;`),
      },
    ),
  };
});

/** Bash scripts for the oracle (each at most a few hundred characters). */
export const bashScript: fc.Arbitrary<string> = script.filter((s) => s.length <= 2000);

/** `count` scripts, reproducible from `seed`. */
export function sampleScripts(count: number, seed: number): string[] {
  return fc.sample(bashScript, { numRuns: count, seed });
}
