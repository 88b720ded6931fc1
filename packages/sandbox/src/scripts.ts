/**
 * The programs that run inside the sandbox, kept as plain source so the library ships them without
 * a build step of their own. Stage 1, the launcher, runs under the host's Perl (launcher.pl, when
 * /usr/bin/perl or /bin/perl exists: it starts in a few ms) or else its Node (launcher.cjs, the
 * host's `process.execPath`, visible read-only); both speak one protocol (launcher.ts). The gate is
 * a POSIX shell script.
 *
 * The launcher — stage 1, no seccomp filter yet, started with an empty environment (nothing of the
 * agent's variables, e.g. PERL5OPT or NODE_OPTIONS, reaches it; stage 2's comes from its
 * configuration): closes inherited descriptors it was not given on purpose, starts the proxy bridge
 * (127.0.0.1:PORT → the bind-mounted unix socket), then starts stage 2: a nested bwrap with
 * `--seccomp 9` (own user and pid namespaces, so the agent cannot see or trace the bridge). With the
 * startup probe, it also checks the walls (direct TCP, DNS, writes) as soon as stage 2 is started,
 * and the proxy once the environment is sent — stage 2 shares its network and mounts. Stage 2
 * begins with the gate; with a late setup it starts at once, before the setup the host sends on
 * fd 3, whose environment script the launcher passes on to the gate (fd 6). It sends its checks and
 * the gate's raw report to the host on fd 3 (the host interprets them), and passes the host's
 * verdict to the gate (fd 5). Without the probe (no gate), a late setup's stage 2 waits for that
 * environment. It relays the agent's exit status and forwards termination signals.
 *
 * gate (GATE_SCRIPT) — stage 2, under the filter, before the agent: tries to connect to a unix
 * socket the launcher listens on (util-linux `logger -u`, else a one-line Node check), and sends
 * the result and its own /proc status (uid, capabilities, seccomp mode) to the launcher on fd 4;
 * then applies the final environment (fd 6), reports it (what the agent will get), waits for the
 * verdict on fd 5 and execs the agent.
 */

export const RUN_DIR = "/run/bottle";
export const PROXY_SOCKET_IN_SANDBOX = "/run/bottle-proxy.sock";
/** Exit status of the sandbox when the probe refused to start the agent. */
export const PROBE_REFUSED_EXIT = 3;
/** The unix socket the launcher listens on for the gate's AF_UNIX check (/tmp is the sandbox's own tmpfs). */
export const GATE_UNIX_PROBE = "/tmp/.bottle-gate-probe.sock";

/** The last line of the launcher's environment script sets this as `$1`: the script arrived whole. */
export const GATE_ENV_APPLIED = "bottle-env-applied";

/**
 * Stage 2's first program. `$1` is the Node binary (fallback for the AF_UNIX check when there is
 * no `logger`), then the agent's argv. Its descriptors: 4 the report to the launcher; 5 the
 * launcher's lines, "env" once the environment script is in 6, then the verdict ("go" or not);
 * 6 that script, in a file the launcher unlinked (Node's pipes to a child are socket pairs, which
 * `. /dev/fd/N` cannot open; a regular file reopens through /proc from its start, and `.` reads
 * it buffered, where dash's `read` would take a syscall per byte). All three are closed before
 * the agent starts.
 *
 * What does not depend on the environment comes first (the AF_UNIX attempt, the /proc status):
 * with a late setup, that runs while the host still waits for its controller. The environment
 * report comes from a subshell that sources the script and execs base64 (the fork the command
 * substitution makes anyway): base64's own environment is what the shell exports. The gate shell
 * itself sources the script only after the verdict, and from there on assigns no variable (the
 * environment may name any, and the agent must get it unchanged), expands no word unquoted and
 * looks nothing up on PATH (IFS and PATH may be anything): the script's last line puts its marker
 * in the positional parameters, and base64's path, found before, is there too.
 */
export const GATE_SCRIPT = [
  'node="$1"; shift',
  `if command -v logger >/dev/null 2>&1; then u=$(LC_ALL=C logger --socket-errors=on -u ${GATE_UNIX_PROBE} -- bottle-probe 2>&1); c=$?;`,
  `else u=$("$node" -e 'require("net").connect(process.argv[1]).on("connect",()=>{console.log("connected");process.exit(0)}).on("error",(e)=>{console.log(e.code);process.exit(1)})' ${GATE_UNIX_PROBE} 2>&1); c=$?; fi`,
  // The unix attempt's output on one line (newlines as spaces), with shell builtins only.
  "nl='\n'",
  'r=""; while :; do case $u in *"$nl"*) r="$r${u%%"$nl"*} "; u=${u#*"$nl"};; *) r="$r$u"; break;; esac; done',
  'printf "unix %s %s\\n" "$c" "$r" >&4',
  // The shell's own status (it is the process that execs the agent), read by a builtin.
  'while IFS= read -r l; do printf "%s\\n" "$l"; done </proc/self/status >&4',
  // base64's full path, looked up now with builtins: the final environment may change PATH.
  'b=base64; o=$IFS; IFS=:; set -f; for d in $PATH; do if [ -n "$d" ] && [ -f "$d/base64" ] && [ -x "$d/base64" ]; then b=$d/base64; break; fi; done; set +f; IFS=$o',
  `IFS= read -r x <&5 && [ "$x" = env ] || exit ${PROBE_REFUSED_EXIT}`,
  'set -- "$b" "$@"',
  `printf "environ %s\\nend\\n" "$(. /dev/fd/6 && [ "$1" = ${GATE_ENV_APPLIED} ] && exec "$2" -w0 /proc/self/environ)" >&4`,
  "exec 4>&-",
  `IFS= read -r v <&5 && [ "$v" = go ] || exit ${PROBE_REFUSED_EXIT}`,
  "shift",
  // Variables the gate set above are unset or exported by the script, like every other one.
  ". /dev/fd/6",
  "exec 5<&- 6<&-",
  `[ "$1" = ${GATE_ENV_APPLIED} ] || exit ${PROBE_REFUSED_EXIT}`,
  "shift",
  'exec "$@"',
].join("\n");

/**
 * Stage 1 under Perl (no module but Fcntl and Errno, the lightest of perl-base: POSIX and Socket
 * would triple its start; the few Linux constants and system calls it needs are written out or
 * given by the host for its architecture), preferred when the
 * host has /usr/bin/perl: it starts in a few milliseconds where Node takes 50-100 ms, and this is
 * on the path of every run. One process runs stage 2 and the probe's relay; the bridge and each
 * wall check run in processes of their own (forked), so no check can hold up another.
 */
export const LAUNCHER_PERL_SOURCE = String.raw`
# bottle sandbox launcher, stage 1 (see scripts.ts). Perl with perl-base modules only.
use strict;
use Fcntl qw(F_GETFL F_SETFL F_DUPFD O_NONBLOCK O_WRONLY O_RDWR O_CREAT O_EXCL);

# Linux's values on x64 and arm64 (the only architectures the sandbox runs on).
my ($AF_UNIX, $AF_INET, $SOCK_STREAM, $SOL_SOCKET, $SO_REUSEADDR, $SO_ERROR, $WNOHANG) = (1, 2, 1, 1, 2, 4, 1);
sub sockaddr_in { my ($port, @octets) = @_; return pack("S n C4 x8", $AF_INET, $port, @octets) }
sub sockaddr_un { return pack("S Z108", $AF_UNIX, $_[0]) }

$SIG{PIPE} = "IGNORE";
# Whole seconds (no module gives finer time); a deadline is at least the seconds it names.
sub deadline { return time() + $_[0] + 1 }
my %sys;
# (Before the configuration gave the numbers, a plain exit.)
sub _exit { syscall($sys{exit_group}, $_[0] + 0) if defined $sys{exit_group}; exit($_[0]) }
# A number, not a string: syscall passes a string as a pointer.
sub close_fd { syscall($sys{close}, $_[0] + 0) }
sub fail { print STDERR "bottle sandbox: ", @_, "\n"; _exit(125) }

# The configuration: one "key hex" line per value (a key may repeat: argv, environment).
my %c;
{
  open(my $fh, "<", $ARGV[0]) or fail("cannot read ", $ARGV[0], ": $!");
  while (my $line = <$fh>) {
    chomp $line;
    my ($k, $v) = split(/ /, $line, 2);
    fail("bad configuration line") unless defined $v && $v =~ /^(?:[0-9a-f]{2})*$/;
    push @{ $c{$k} }, pack("H*", $v);
  }
  close $fh;
}
sub one { my $v = $c{ $_[0] }; return $v ? $v->[0] : undef }
# The architecture's system call numbers, from the host: close, dup3, exit_group.
for my $name ("close", "dup3", "exit_group") {
  my $n = one("sys_$name");
  defined $n && $n =~ /^\d+$/ or do { print STDERR "bottle sandbox: no system call number for $name\n"; exit(125) };
  $sys{$name} = $n;
}
sub many { my $v = $c{ $_[0] }; return $v ? @$v : () }
my $probe = (one("probe") // "") eq "1";
my $late = (one("late") // "") eq "1";
my $channelFd = ($probe || $late) ? 3 : -1;

# Descriptors inherited without close-on-exec would reach the agent: close every one except
# stdio and the host channel.
{
  opendir(my $d, "/proc/self/fd") or fail("cannot list /proc/self/fd: $!");
  my @fds = grep { /^\d+$/ } readdir($d);
  closedir($d);
  for my $fd (@fds) {
    next if $fd <= 2 || $fd == $channelFd;
    open(my $info, "<", "/proc/self/fdinfo/$fd") or next;
    my $text = do { local $/; <$info> };
    close $info;
    close_fd($fd) if $text =~ /flags:\s*([0-7]+)/ && (oct($1) & 02000000) == 0;
  }
}

sub nonblocking {
  my ($fh) = @_;
  my $flags = fcntl($fh, F_GETFL, 0) or fail("fcntl: $!");
  fcntl($fh, F_SETFL, $flags | O_NONBLOCK) or fail("fcntl: $!");
}

# A signal (a child's exit: SIGCHLD) interrupts a blocking system call with EINTR, and Perl does
# not restart it. A connect so interrupted goes on in the kernel: wait until the socket is
# writable, then its result is SO_ERROR.
sub connect_whole {
  my ($s, $addr) = @_;
  return 1 if connect($s, $addr);
  return 0 unless $!{EINTR};
  my $win = "";
  vec($win, fileno($s), 1) = 1;
  my $until = deadline(5);
  while (time() < $until) {
    my $n = select(undef, my $wout = $win, undef, 1);
    last if $n > 0;
  }
  my $err = unpack("i", getsockopt($s, $SOL_SOCKET, $SO_ERROR) // pack("i", 110));
  return 1 if $err == 0;
  $! = $err;
  return 0;
}

# Writes all of $data to a blocking handle, again after an interrupted write.
sub write_whole {
  my ($fh, $data) = @_;
  while (length $data) {
    my $w = syswrite($fh, $data);
    if (!defined $w) { next if $!{EINTR} || $!{EAGAIN}; return 0 }
    substr($data, 0, $w, "");
  }
  return 1;
}

sub env_pairs {
  my %env;
  for my $entry (@_) {
    my $eq = index($entry, "=");
    fail("bad environment entry") if $eq <= 0;
    $env{ substr($entry, 0, $eq) } = substr($entry, $eq + 1);
  }
  return \%env;
}
my $startEnv = env_pairs(many("env"));

# ---- the bridge: 127.0.0.1:PORT -> the proxy's unix socket, in a process of its own ----
sub bridge {
  my ($listener, $target) = @_;
  nonblocking($listener);
  my %ends;
  my $drop = sub {
    my ($e) = @_;
    for my $x ($e, $e->{other}) {
      next unless $x && $x->{fh};
      delete $ends{ $x->{fd} };
      close($x->{fh});
      $x->{fh} = undef;
    }
    delete $e->{other}{other};
    delete $e->{other};
  };
  for (;;) {
    my ($rin, $win) = ("", "");
    vec($rin, fileno($listener), 1) = 1;
    for my $e (values %ends) {
      vec($rin, $e->{fd}, 1) = 1 if !$e->{eof} && length($e->{other}{out}) < 1048576;
      vec($win, $e->{fd}, 1) = 1 if length($e->{out}) > 0;
    }
    my ($rout, $wout) = ($rin, $win);
    my $n = select($rout, $wout, undef, undef);
    next if $n < 0;
    if (vec($rout, fileno($listener), 1)) {
      for (;;) {
        my $client;
        last unless accept($client, $listener);
        my $up;
        if (!socket($up, $AF_UNIX, $SOCK_STREAM, 0) || !connect_whole($up, sockaddr_un($target))) {
          close($client);
          next;
        }
        nonblocking($client);
        nonblocking($up);
        my $a = { fh => $client, fd => fileno($client), out => "", eof => 0, shut => 0 };
        my $b = { fh => $up, fd => fileno($up), out => "", eof => 0, shut => 0 };
        $a->{other} = $b;
        $b->{other} = $a;
        $ends{ $a->{fd} } = $a;
        $ends{ $b->{fd} } = $b;
      }
    }
    for my $fd (keys %ends) {
      my $e = $ends{$fd} or next;
      next unless vec($rout, $fd, 1);
      my $got = sysread($e->{fh}, my $buf, 65536);
      if (!defined $got) { $drop->($e) unless $!{EAGAIN} || $!{EINTR}; next }
      if ($got == 0) { $e->{eof} = 1 } else { $e->{other}{out} .= $buf }
    }
    for my $fd (keys %ends) {
      my $e = $ends{$fd} or next;
      if (length($e->{out}) > 0 && vec($wout, $fd, 1)) {
        my $w = syswrite($e->{fh}, $e->{out});
        if (!defined $w) { $drop->($e) unless $!{EAGAIN} || $!{EINTR}; next }
        substr($e->{out}, 0, $w, "");
      }
      # What the other side sent before its end is written: pass its end on.
      if ($e->{other}{eof} && length($e->{out}) == 0 && !$e->{shut}) {
        shutdown($e->{fh}, 1);
        $e->{shut} = 1;
      }
      $drop->($e) if $e->{shut} && $e->{other}{shut};
    }
  }
}

my @kids;
sub start_bridge {
  my $port = one("bridgePort");
  return unless defined $port;
  socket(my $listener, $AF_INET, $SOCK_STREAM, 0) or fail("bridge: socket: $!");
  setsockopt($listener, $SOL_SOCKET, $SO_REUSEADDR, 1);
  bind($listener, sockaddr_in($port, 127, 0, 0, 1))
    or fail("bridge: cannot listen on 127.0.0.1:$port: $!");
  listen($listener, 128) or fail("bridge: listen: $!");
  my $pid = fork() // fail("fork: $!");
  if ($pid == 0) {
    close_fd($channelFd) if $channelFd >= 0;
    bridge($listener, one("bridgeSocket"));
    _exit(0);
  }
  push @kids, $pid;
  close($listener);
}

# ---- JSON for the report: control characters, quotes and backslashes escaped; other bytes as they are (UTF-8) ----
sub js {
  my ($s) = @_;
  $s =~ s/([\x00-\x1f"\\\x7f])/sprintf("\\u%04x", ord($1))/ge;
  return "\"$s\"";
}
sub check_json { my ($name, $ok, $detail) = @_; return "{\"name\":" . js($name) . ",\"ok\":" . ($ok ? "true" : "false") . ",\"detail\":" . js($detail) . "}" }

# ---- the probe's checks that stage 1 makes for stage 2 (same network namespace, same mounts) ----
# Each runs in a process of its own and writes its result as one JSON line into a pipe.
sub checker {
  my ($code) = @_;
  pipe(my $r, my $w) or fail("pipe: $!");
  my $pid = fork() // fail("fork: $!");
  if ($pid == 0) {
    close($r);
    close_fd($channelFd) if $channelFd >= 0;
    my $line = $code->() . "\n";
    write_whole($w, $line);
    _exit(0);
  }
  push @kids, $pid;
  close($w);
  return $r;
}

sub check_tcp {
  my @bad;
  for my $target (many("tcp")) {
    my ($host, $port) = $target =~ /^(.*):(\d+)$/ or next;
    my @octets = $host =~ /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/ or next;
    socket(my $s, $AF_INET, $SOCK_STREAM, 0) or next;
    nonblocking($s);
    if (connect($s, sockaddr_in($port, @octets))) { push @bad, $target; next }
    next unless $!{EINPROGRESS};
    my $win = "";
    vec($win, fileno($s), 1) = 1;
    next unless select(undef, my $wout = $win, undef, 1.5) > 0;
    my $err = unpack("i", getsockopt($s, $SOL_SOCKET, $SO_ERROR) // pack("i", 1));
    push @bad, $target if $err == 0;
  }
  return check_json("direct TCP fails", !@bad, @bad ? "connected to " . join(", ", @bad) : "refused or unreachable");
}

sub check_writes {
  my @wrote;
  my @dirs = many("write");
  for my $dir (@dirs) {
    (my $file = $dir) =~ s{/$}{};
    $file .= "/.bottle-probe-$$";
    if (sysopen(my $fh, $file, O_WRONLY | O_CREAT | O_EXCL, 0600)) {
      push @wrote, $dir;
      close($fh);
      unlink($file);
    }
  }
  return check_json("writes outside the writable paths fail", !@wrote, @wrote ? "wrote in " . join(", ", @wrote) : scalar(@dirs) . " paths refused");
}

sub check_dns {
  my $name = one("dnsName");
  my @a = gethostbyname($name);
  return check_json("DNS fails", 0, "$name resolved to " . join(".", unpack("C4", $a[4]))) if @a > 4 && defined $a[4];
  return check_json("DNS fails", 1, "no address");
}

# ---- stage 2 ----
my ($child, $childStatus);
my %sigNumber = (HUP => 1, INT => 2, QUIT => 3, KILL => 9, TERM => 15);

sub script_file {
  my $dir = "/tmp/.bottle-env-$$-" . int(rand(1 << 30));
  mkdir($dir, 0700) or fail("cannot create $dir: $!");
  sysopen(my $fh, "$dir/env.sh", O_RDWR | O_CREAT | O_EXCL, 0600) or fail("cannot create the environment file: $!");
  unlink("$dir/env.sh");
  rmdir($dir);
  return $fh;
}

# Starts stage 2 with these descriptors (target fd -> handle) and environment.
sub start_stage2 {
  my ($fds, $env) = @_;
  my $pid = fork() // fail("fork: $!");
  if ($pid == 0) {
    $SIG{$_} = "DEFAULT" for qw(PIPE CHLD TERM INT HUP QUIT);
    # First every source above the targets, then each onto its target (dup2 clears close-on-exec).
    my %high;
    for my $target (keys %$fds) {
      my $h = fcntl($fds->{$target}, F_DUPFD, 20);
      _exit(125) unless defined $h;
      $high{$target} = $h;
    }
    close_fd($_) for 3 .. 19;
    for my $target (keys %high) {
      syscall($sys{dup3}, $high{$target} + 0, $target + 0, 0) == $target or _exit(125);
      close_fd($high{$target});
    }
    %ENV = %$env;
    my @inner = many("inner");
    my $bwrap = one("bwrap");
    exec { $bwrap } $bwrap, @inner;
    print STDERR "bottle sandbox: cannot start stage 2: $!\n";
    _exit(125);
  }
  return $pid;
}

sub finish {
  my ($status) = @_;
  kill("KILL", @kids) if @kids;
  if ($status & 127) {
    my $n = $status & 127;
    $n = 15 unless grep { $_ == $n } values %sigNumber;
    _exit(128 + $n);
  }
  _exit($status >> 8);
}

sub reap {
  while ((my $pid = waitpid(-1, $WNOHANG)) > 0) {
    finish($?) if defined $child && $pid == $child;
  }
}
# A child's exit wakes the loop through a pipe: Perl runs the handler between two of its own
# operations, maybe just before select, which would then not be interrupted.
pipe(my $wakeR, my $wakeW) or fail("pipe: $!");
nonblocking($wakeR);
nonblocking($wakeW);
$SIG{CHLD} = sub { syswrite($wakeW, "x") };
for my $sig (qw(TERM INT HUP QUIT)) {
  $SIG{$sig} = sub { kill($sig, $child) if $child };
}

# ---- an event loop over readable descriptors, until a condition or a deadline ----
my %readers;
sub wait_until {
  my ($done, $deadline) = @_;
  for (;;) {
    return 1 if $done->();
    my $left = defined $deadline ? $deadline - time() : 60;
    return 0 if $left <= 0;
    my $rin = "";
    vec($rin, $_, 1) = 1 for keys %readers, fileno($wakeR);
    my $rout = $rin;
    my $n = select($rout, undef, undef, $left);
    1 while sysread($wakeR, my $drain, 512);
    reap();
    next if $n <= 0;
    for my $fd (keys %readers) { $readers{$fd}->() if $readers{$fd} && vec($rout, $fd, 1) }
  }
}

# Reads a handle into a buffer until EOF, a line that satisfies $stop, or 4 MiB.
sub collect {
  my ($fh, $stop) = @_;
  my $st = { text => "", done => 0 };
  my $fd = fileno($fh);
  $readers{$fd} = sub {
    my $got = sysread($fh, my $buf, 65536);
    return if !defined $got && ($!{EAGAIN} || $!{EINTR});
    if (!$got) { $st->{done} = 1; delete $readers{$fd}; return }
    $st->{text} .= $buf;
    if (($stop && $stop->($st->{text})) || length($st->{text}) > 4194304) { $st->{done} = 1; delete $readers{$fd} }
  };
  return $st;
}

my $channel;
my $channelIn;
if ($channelFd >= 0) {
  open($channel, "+<&=", $channelFd) or fail("cannot open the host channel: $!");
  $channelIn = collect($channel, sub { 0 });
}
# The next line from the host (without its newline), or undef when the channel ended or the deadline passed.
sub host_line {
  my ($deadline) = @_;
  wait_until(sub { index($channelIn->{text}, "\n") >= 0 || $channelIn->{done} }, $deadline);
  my $nl = index($channelIn->{text}, "\n");
  return undef if $nl < 0;
  my $line = substr($channelIn->{text}, 0, $nl);
  substr($channelIn->{text}, 0, $nl + 1, "");
  return $line;
}
sub host_write {
  my ($data) = @_;
  while (length $data) {
    my $w = syswrite($channel, $data);
    if (!defined $w) { next if $!{EINTR} || $!{EAGAIN}; return 0 }
    substr($data, 0, $w, "");
  }
  return 1;
}
# The late setup: "setup <hex of the environment, NUL-separated NAME=value> <hex of the gate's script>".
sub late_setup {
  my $line = host_line(deadline(int((one("lateTimeoutMs") // 120000) / 1000)));
  fail("no environment from the host in time") unless defined $line;
  my ($env, $script) = $line =~ /^setup ((?:[0-9a-f]{2})*) ((?:[0-9a-f]{2})*)$/ or fail("unreadable set-up from the host");
  $env = pack("H*", $env);
  return (env_pairs($env eq "" ? () : split(/\0/, $env, -1)), pack("H*", $script));
}

# ---- main ----
start_bridge();
my $unixServer;
my $unixConnections = 0;
if ($probe) {
  my $path = one("unixProbe");
  socket($unixServer, $AF_UNIX, $SOCK_STREAM, 0) or fail("socket: $!");
  bind($unixServer, sockaddr_un($path)) or fail("cannot listen on $path: $!");
  listen($unixServer, 16) or fail("listen: $!");
  nonblocking($unixServer);
  $readers{ fileno($unixServer) } = sub {
    for (;;) { my $c; last unless accept($c, $unixServer); $unixConnections++; close($c) }
  };
}

my $env = $startEnv;
my $script = one("script");
if ($late && !$probe) { ($env, $script) = late_setup() }
open(my $filter, "<", one("filter")) or fail("cannot open the seccomp filter: $!");
if (!$probe) {
  $child = start_stage2({ 9 => $filter }, $env);
  close($filter);
  wait_until(sub { 0 }, undef) while 1;
}

pipe(my $reportR, my $reportW) or fail("pipe: $!");
pipe(my $verdictR, my $verdictW) or fail("pipe: $!");
my $envFile = script_file();
$child = start_stage2({ 4 => $reportW, 5 => $verdictR, 6 => $envFile, 9 => $filter }, $env);
close($filter);
close($reportW);
close($verdictR);

# The checks of the walls start now, while stage 2 starts and the setup is awaited.
my %results;
for my $check (["tcp", \&check_tcp], ["writes", \&check_writes], ["dns", \&check_dns]) {
  $results{ $check->[0] } = collect(checker($check->[1]), sub { $_[0] =~ /\n/ });
}
my $gate = collect($reportR, sub { $_[0] =~ /(?:^|\n)end\n/ });
# The proxy, asked at once (with a late setup the host's relay holds the request until the proxy is known).
my $asked;
if (defined one("proxyPort")) {
  my $host = one("undeclaredHost");
  socket(my $s, $AF_INET, $SOCK_STREAM, 0) or fail("socket: $!");
  if (connect_whole($s, sockaddr_in(one("proxyPort"), 127, 0, 0, 1))
    && write_whole($s, "CONNECT $host:443 HTTP/1.1\r\nHost: $host:443\r\n\r\n")) {
    $asked = collect($s, sub { index($_[0], "\r\n") >= 0 });
    $asked->{fh} = $s;
  } else {
    $asked = { text => "", done => 1, error => "$!" };
  }
}

if ($late) { ($env, $script) = late_setup() }
{
  my $data = $script // "";
  while (length $data) {
    my $w = syswrite($envFile, $data) // fail("cannot write the environment file: $!");
    substr($data, 0, $w, "");
  }
  close($envFile);
}
write_whole($verdictW, "env\n");
# The wall checks and the proxy's answer: within 3 s of the environment being sent.
my $soon = deadline(3);
wait_until(sub { $gate->{done} }, deadline(15));
wait_until(sub { !grep { !$_->{done} } values %results }, $soon);
wait_until(sub { $asked->{done} }, $soon) if $asked;

my @checks;
for my $name ("tcp", "dns", "writes") {
  my $r = $results{$name};
  if ($r->{done} && $r->{text} =~ /^(\{.*\})\n/) { push @checks, $1 }
  elsif ($name eq "dns") { push @checks, check_json("DNS fails", 1, "no answer") }
  elsif ($name eq "tcp") { push @checks, check_json("direct TCP fails", 1, "no answer") }
  else { push @checks, check_json("writes outside the writable paths fail", 0, "no answer") }
}
if ($asked) {
  my ($line) = split(/\r\n/, $asked->{text});
  my ($status) = defined $line ? $line =~ /^HTTP\/1\.[01] (\d{3})/ : ();
  my $detail = defined $status ? $line : $asked->{done} ? ($asked->{error} // "closed: " . ($line // "")) : "no answer";
  push @checks, check_json("proxy answers", defined $status, $detail);
  push @checks, check_json("proxy refuses an undeclared host", defined $status && ($status < 200 || $status >= 300),
    defined $status ? one("undeclaredHost") . " \xe2\x86\x92 $status" : "no answer");
  close($asked->{fh}) if $asked->{fh};
}
my $report = "{\"launcher\":\"perl\",\"checks\":[" . join(",", @checks) . "],\"gate\":" . js($gate->{text}) . ",\"unixConnections\":$unixConnections}\n";
my $verdict = host_write($report) ? host_line(deadline(30)) : undef;
close($unixServer) if $unixServer;
delete $readers{ fileno($unixServer) } if $unixServer;
write_whole($verdictW, (defined $verdict && $verdict =~ /^go\s*$/ ? "go" : "stop") . "\n");
close($verdictW);
close($channel);
%readers = ();
wait_until(sub { 0 }, undef) while 1;
`;

/** The checks every probe report of the launcher holds (the host refuses a report without one). */
export const LAUNCHER_CHECKS = [
  "not root, no capabilities",
  "socket(AF_UNIX) refused",
  "direct TCP fails",
  "DNS fails",
  "writes outside the writable paths fail",
] as const;
/** And these when the sandbox has a proxy bridge. */
export const LAUNCHER_PROXY_CHECKS = ["proxy answers", "proxy refuses an undeclared host"] as const;

/**
 * Stage 1 under Node (the fallback when the host has no system Perl). Same protocol as the Perl
 * launcher below: the configuration as `key hex` lines (launcher.ts), the late setup as one
 * `setup <hex env> <hex script>` line on fd 3, the report as one JSON line back.
 */
export const LAUNCHER_SOURCE = String.raw`
"use strict";
const { spawn } = require("node:child_process");
const dns = require("node:dns");
const fs = require("node:fs");
const net = require("node:net");

const die = (m) => { process.stderr.write("bottle sandbox: " + m + "\n"); process.exit(125); };
const conf = {};
for (const line of fs.readFileSync(process.argv[2], "latin1").split("\n")) {
  if (line === "") continue;
  const m = /^([A-Za-z_][A-Za-z0-9_]*) ((?:[0-9a-f]{2})*)$/.exec(line);
  if (!m) die("bad configuration line");
  (conf[m[1]] ??= []).push(Buffer.from(m[2], "hex").toString("utf8"));
}
const one = (k) => conf[k]?.[0];
const many = (k) => conf[k] ?? [];
const probe = one("probe") === "1";
const late = one("late") === "1";
function envOf(entries) {
  const env = {};
  for (const e of entries) {
    const eq = e.indexOf("=");
    if (eq <= 0) die("bad environment entry");
    env[e.slice(0, eq)] = e.slice(eq + 1);
  }
  return env;
}
const startEnv = envOf(many("env"));

// Descriptors inherited without close-on-exec (from whoever started the host process) would
// reach the agent: close every one except stdio and the host channel (fd 3).
for (const name of fs.readdirSync("/proc/self/fd")) {
  const fd = Number(name);
  if (fd <= 2 || (fd === 3 && (probe || late))) continue;
  let flags = "";
  try { flags = fs.readFileSync("/proc/self/fdinfo/" + fd, "utf8"); } catch { continue; }
  const m = /flags:\s*([0-7]+)/.exec(flags);
  if (m && (parseInt(m[1], 8) & 0o2000000) === 0) { try { fs.closeSync(fd); } catch {} }
}

function startBridge() {
  return new Promise((resolve, reject) => {
    // Half-open: each side's end is passed on to the other, so an ended request still gets its answer.
    const server = net.createServer({ allowHalfOpen: true }, (client) => {
      const upstream = net.connect({ path: one("bridgeSocket"), allowHalfOpen: true });
      client.pipe(upstream).pipe(client);
      const end = () => { client.destroy(); upstream.destroy(); };
      client.on("error", end); upstream.on("error", end);
      // A side closed both ways: the other ends once flushed (a destroy would drop an answer's tail).
      client.on("close", () => upstream.end()); upstream.on("close", () => client.end());
    });
    server.on("error", reject);
    server.listen(Number(one("bridgePort")), "127.0.0.1", () => { server.unref(); resolve(server); });
  });
}

const within = (ms, p) => Promise.race([p, new Promise((r) => setTimeout(() => r({ timeout: true }), ms))]);
function tryConnect(opts) {
  return new Promise((resolve) => {
    const s = net.connect(opts);
    s.on("connect", () => { s.destroy(); resolve({ connected: true }); });
    s.on("error", (e) => resolve({ connected: false, code: e.code }));
  });
}
async function checkTcp(add) {
  const bad = [];
  for (const target of many("tcp")) {
    const m = /^(.*):(\d+)$/.exec(target);
    if (!m) continue;
    const r = await within(1500, tryConnect({ host: m[1], port: Number(m[2]) }));
    if (r.connected) bad.push(target);
  }
  add("direct TCP fails", bad.length === 0, bad.length ? "connected to " + bad.join(", ") : "refused or unreachable");
}
async function checkDns(add) {
  const name = one("dnsName");
  const r = await within(2000, dns.promises.lookup(name).then((a) => ({ address: a.address }), (e) => ({ code: e.code })));
  add("DNS fails", r.timeout || r.address === undefined, r.timeout ? "no answer" : r.address ? name + " resolved to " + r.address : String(r.code));
}
function checkWrites(add) {
  const wrote = [];
  const dirs = many("write");
  for (const dir of dirs) {
    const file = dir.replace(/\/$/, "") + "/.bottle-probe-" + process.pid;
    try {
      fs.writeFileSync(file, "x", { flag: "wx" });
      wrote.push(dir);
      try { fs.unlinkSync(file); } catch {}
    } catch {}
  }
  add("writes outside the writable paths fail", wrote.length === 0, wrote.length ? "wrote in " + wrote.join(", ") : dirs.length + " paths refused");
}
/** Asks the proxy, through the bridge, for an undeclared host (with a late setup the host's relay holds it until the proxy is known). */
function askProxy() {
  const host = one("undeclaredHost");
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port: Number(one("proxyPort")) });
    let buf = "";
    s.on("connect", () => s.write("CONNECT " + host + ":443 HTTP/1.1\r\nHost: " + host + ":443\r\n\r\n"));
    s.on("data", (d) => { buf += d; if (buf.includes("\r\n")) { s.destroy(); resolve({ line: buf.split("\r\n")[0] }); } });
    s.on("error", (e) => resolve({ code: e.code }));
    s.on("end", () => resolve({ line: buf.split("\r\n")[0] }));
  });
}
async function checkProxy(add, asked) {
  const answer = await within(3000, asked);
  const m = answer.line && /^HTTP\/1\.[01] (\d{3})/.exec(answer.line);
  add("proxy answers", Boolean(m), m ? answer.line : answer.timeout ? "no answer" : String(answer.code ?? answer.line));
  const status = m ? Number(m[1]) : 0;
  add("proxy refuses an undeclared host", Boolean(m) && (status < 200 || status >= 300), m ? one("undeclaredHost") + " \u2192 " + status : "no answer");
}
/** What the gate (stage 2, under the filter) reported on fd 4, up to its "end" line. */
function readGate(stream) {
  return new Promise((resolve) => {
    let text = "";
    const done = () => resolve(text);
    stream.on("data", (d) => {
      text += d.toString("latin1");
      if (/(^|\n)end\n/.test(text) || text.length > 4 * 1024 * 1024) { stream.removeAllListeners("data"); done(); }
    });
    stream.on("error", done);
    stream.on("close", done);
  });
}

const checks = [];
const add = (name, ok, detail) => checks.push({ name, ok, detail });
let wallChecks;
function startWallChecks() {
  if (!probe || wallChecks) return;
  wallChecks = Promise.all([checkTcp(add), checkDns(add), Promise.resolve().then(() => checkWrites(add))]);
}

/** Stage 2 is running: its gate reports on fd 4, and waits for "env" on fd 5 with the script in its fd 6 (envFd here). */
async function probeAndGate(child, envFd) {
  startWallChecks();
  const gate = readGate(child.stdio[4]);
  const asked = one("proxyPort") === undefined ? undefined : askProxy();
  const script = Buffer.from(late ? (await lateSetup()).script : (one("script") ?? ""), "utf8");
  for (let off = 0; off < script.length; ) off += fs.writeSync(envFd, script, off);
  fs.closeSync(envFd);
  child.stdio[5].on("error", () => {});
  child.stdio[5].write("env\n");
  const [raw] = await Promise.all([within(15000, gate), wallChecks, asked && checkProxy(add, asked)]);
  const report = JSON.stringify({ launcher: "node", checks, gate: typeof raw === "string" ? raw : "", unixConnections }) + "\n";
  const verdict = await hostVerdict(report);
  unixServer.close();
  child.stdio[5].end(verdict + "\n");
}

/** The host channel (fd 3): one line per message. */
let channel;
const lines = [];
let waiting;
let channelDone = false;
function openChannel() {
  if (channel) return;
  channel = new net.Socket({ fd: 3, readable: true, writable: true });
  let buf = "";
  const wake = () => { if (waiting) { const w = waiting; waiting = undefined; w(); } };
  channel.on("data", (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) { lines.push(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
    if (buf.length > 64 * 1024 * 1024) { channelDone = true; }
    wake();
  });
  const end = () => { channelDone = true; wake(); };
  channel.on("error", end);
  channel.on("end", end);
  channel.on("close", end);
}
/** The next line from the host, or undefined when the channel ended or ms passed. */
function nextLine(ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { waiting = undefined; resolve(undefined); }, ms);
    const check = () => {
      if (lines.length > 0) { clearTimeout(timer); resolve(lines.shift()); return; }
      if (channelDone) { clearTimeout(timer); resolve(undefined); return; }
      waiting = check;
    };
    check();
  });
}
/** Sends the report to the host on fd 3 and resolves to its verdict ("go" or "stop"). */
async function hostVerdict(report) {
  try { openChannel(); } catch { return "stop"; }
  channel.write(report);
  const line = await nextLine(30000);
  channel.destroy();
  return line !== undefined && line.trim() === "go" ? "go" : "stop";
}
/** The late setup: "setup <hex of the final environment, NUL-separated NAME=value> <hex of the gate's script>". */
async function lateSetup() {
  openChannel();
  const line = await nextLine(Number(one("lateTimeoutMs") ?? 120000));
  if (line === undefined) throw new Error("no environment from the host in time");
  const m = /^setup ((?:[0-9a-f]{2})*) ((?:[0-9a-f]{2})*)$/.exec(line);
  if (!m) throw new Error("unreadable set-up from the host");
  const env = Buffer.from(m[1], "hex").toString("utf8");
  return { env: envOf(env === "" ? [] : env.split("\0")), script: Buffer.from(m[2], "hex").toString("utf8") };
}

let unixConnections = 0;
let unixServer;
/** An empty file on the sandbox's own /tmp, already unlinked: only its descriptors reach it. */
function scriptFile() {
  const dir = fs.mkdtempSync("/tmp/.bottle-env-");
  const fd = fs.openSync(dir + "/env.sh", "wx", 0o600);
  fs.unlinkSync(dir + "/env.sh");
  fs.rmdirSync(dir);
  return fd;
}

async function main() {
  if (one("bridgePort") !== undefined) await startBridge();
  if (probe) {
    unixServer = net.createServer((c) => { unixConnections++; c.destroy(); });
    await new Promise((resolve, reject) => { unixServer.on("error", reject); unixServer.listen(one("unixProbe"), resolve); });
    unixServer.unref();
  }
  // With the probe, stage 2 starts now, a late setup or not: its gate makes the checks that do
  // not depend on the environment, then waits for the final one (probeAndGate). Without the
  // probe there is no gate: the agent starts once a late setup has sent its environment.
  let env = startEnv;
  if (late && !probe) env = (await lateSetup()).env;
  const filter = fs.openSync(one("filter"), "r");
  const envFd = probe ? scriptFile() : "ignore";
  const gatePipe = probe ? "pipe" : "ignore";
  const stdio = ["inherit", "inherit", "inherit", "ignore", gatePipe, gatePipe, envFd, "ignore", "ignore", filter];
  const child = spawn(one("bwrap"), many("inner"), { stdio, env });
  fs.closeSync(filter);
  startWallChecks();
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"]) {
    process.on(sig, () => { try { child.kill(sig); } catch {} });
  }
  child.on("error", (e) => die("cannot start stage 2: " + e.message));
  child.on("exit", (code, signal) => {
    if (signal) {
      const n = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 }[signal] ?? 15;
      process.exit(128 + n);
    }
    process.exit(code ?? 1);
  });
  if (probe) await probeAndGate(child, envFd);
}
main().catch((e) => die(e.message));
`;
