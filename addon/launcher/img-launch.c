// img-launch: the door into img's user namespace, taken before Node starts.
//
// Unprivileged, img must be root of a user + mount namespace whose ids map to
// the caller's subordinate ranges for anything that touches snapshots. Node
// cannot unshare a user namespace itself (it is multi-threaded), so without
// this launcher img would start, spawn itself in a namespace and start again.
// img-launch enters first and starts Node once:
//
//   img-launch img N PROGRAM [ARG...] IMG-ARG...  run PROGRAM, its N-1 ARGs and the IMG-ARGs,
//                                                 in the namespace when the IMG-ARGs name a
//                                                 command that needs it (see needs_namespace)
//   img-launch enter PROGRAM [ARG...]             always try to enter
//   img-launch decide IMG-ARG...                  print "enter" or "skip" (tests)
//
// The mapping, best first; each attempt is a fresh child, since a map once
// written cannot be changed:
//   1. the caller's subordinate ranges (IMG_SUBUID_FILE/IMG_SUBGID_FILE or
//      /etc/subuid, /etc/subgid), written by newuidmap/newgidmap;
//   2. when there are no ranges, no helpers, or either helper fails: the
//      caller's own uid and gid as 0, setgroups denied;
//   3. when no user namespace can be created: PROGRAM runs outside.
// PROGRAM gets the outcome as JSON in IMG_ENTRY (read by lib/exec/entry.ts)
// and decides whether it can go on. This file reports facts (helper, exit
// status, its stderr, errno names); the words for users live in TypeScript.
//
// Shape: img-launch stays outside as a small relay. The namespace child (which
// becomes Node) dies with it (PR_SET_PDEATHSIG), receives the signals other
// processes send the launcher (a terminal's ^C already reaches the whole
// process group, so those are not sent twice), and its exit status becomes the
// launcher's. As pid 1 of a container the relay also reaps orphans.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double epoch_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char* errno_name(int err) {
  const char* n = strerrorname_np(err);
  return n ? n : "EUNKNOWN";
}

static void die(const char* what, int err) {
  fprintf(stderr, "img-launch: %s: %s\n", what, strerror(err));
  exit(127);
}

// ---- The record (IMG_ENTRY): a JSON object built as text.

static char record[8192];
static size_t record_len;

static void put(const char* s) {
  size_t n = strlen(s);
  if (record_len + n >= sizeof record - 2) return;  // stderr texts are capped below; never reached
  memcpy(record + record_len, s, n);
  record_len += n;
  record[record_len] = 0;
}

// "key":"value", escaped for JSON; at most 400 bytes of the value.
static void put_string(const char* key, const char* value) {
  char buf[2048];
  size_t n = 0;
  n += snprintf(buf, sizeof buf, "%s\"%s\":\"", record_len > 1 ? "," : "", key);
  for (size_t i = 0; value[i] && i < 400 && n < sizeof buf - 8; i++) {
    unsigned char c = (unsigned char)value[i];
    if (c == '"' || c == '\\') {
      buf[n++] = '\\';
      buf[n++] = (char)c;
    } else if (c < 0x20) {
      n += snprintf(buf + n, sizeof buf - n, "\\u%04x", c);
    } else {
      buf[n++] = (char)c;
    }
  }
  buf[n++] = '"';
  buf[n] = 0;
  put(buf);
}

static void put_number(const char* key, double v) {
  char buf[96];
  snprintf(buf, sizeof buf, "%s\"%s\":%.3f", record_len > 1 ? "," : "", key, v);
  put(buf);
}

static void put_int(const char* key, long v) {
  char buf[96];
  snprintf(buf, sizeof buf, ",\"%s\":%ld", key, v);
  put(buf);
}

// ---- Which img commands need the namespace.

// The commands that touch snapshots (and `version`, which reports the entry).
// lib/cli/launch.ts holds the same list; test/exec/launcher.test.ts keeps them equal.
static const char* const kNamespaceCommands[] = {"build", "du", "prune", "unpack", "version", NULL};

// Skips img's global flags (-b/--backend X, -s/--state X, -d/--debug, short
// clusters like -ds X) to the command word. Anything else before it (help,
// --version, an unknown flag) means no namespace: should img still need one,
// it re-executes itself (slower, still correct).
static int needs_namespace(int argc, char** argv) {
  int i = 0;
  const char* command = NULL;
  while (i < argc && !command) {
    const char* a = argv[i++];
    if (!strcmp(a, "--backend") || !strcmp(a, "--state")) {
      i++;
    } else if (!strncmp(a, "--backend=", 10) || !strncmp(a, "--state=", 8) || !strcmp(a, "--debug")) {
    } else if (a[0] == '-' && a[1] && a[1] != '-') {
      for (const char* c = a + 1; *c; c++) {
        if (*c == 'd') continue;
        if (*c != 'b' && *c != 's') return 0;
        if (!c[1]) i++;  // the value is the next word, else the rest of this one
        break;
      }
    } else if (a[0] == '-') {
      return 0;
    } else {
      command = a;
    }
  }
  if (!command) return 0;
  int known = 0;
  for (const char* const* c = kNamespaceCommands; *c; c++) known |= !strcmp(*c, command);
  if (!known) return 0;
  for (; i < argc; i++)
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 0;
  return 1;
}

// ---- Subordinate ranges and the helpers that map them.

#define MAX_RANGES 16
struct range {
  unsigned long start, count;
};

// The caller's lines in a subuid/subgid file ("owner:start:count", owner a
// name or a uid; both files are keyed by the user, as shadow reads them).
static int read_ranges(const char* file, const char* user, uid_t uid, struct range* out) {
  FILE* f = fopen(file, "re");
  if (!f) return 0;
  char line[512], uidstr[32];
  snprintf(uidstr, sizeof uidstr, "%u", uid);
  int n = 0;
  while (n < MAX_RANGES && fgets(line, sizeof line, f)) {
    char* owner = line;
    while (*owner == ' ' || *owner == '\t') owner++;
    if (*owner == '#' || *owner == '\n' || !*owner) continue;
    char* s = strchr(owner, ':');
    if (!s) continue;
    *s++ = 0;
    if (strcmp(owner, uidstr) && (!user || strcmp(owner, user))) continue;
    char* end;
    unsigned long start = strtoul(s, &end, 10);
    if (*end != ':') continue;
    unsigned long count = strtoul(end + 1, &end, 10);
    if (count == 0) continue;
    out[n].start = start;
    out[n].count = count;
    n++;
  }
  fclose(f);
  return n;
}

// PATH first (where a distribution or a test puts them), then the usual dirs.
static int find_helper(const char* name, char* out, size_t size) {
  const char* path = getenv("PATH");
  char dirs[4096];
  snprintf(dirs, sizeof dirs, "%s:/usr/bin:/usr/sbin:/bin:/sbin", path ? path : "");
  for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    if (!*d) continue;
    snprintf(out, size, "%s/%s", d, name);
    if (access(out, X_OK) == 0) return 1;
  }
  return 0;
}

struct helper {
  const char* name;
  char path[512];
  pid_t pid;
  int err_fd;
  int status;
  char err[512];
};

// newuidmap PID 0 ID 1 1 START COUNT [NEXT START COUNT]...
static void start_helper(struct helper* h, pid_t target, unsigned id, const struct range* r, int n) {
  char words[2 + 3 * (MAX_RANGES + 1)][24];
  char* argv[3 + 3 * (MAX_RANGES + 1)];
  int a = 0;
  argv[a++] = h->path;
  snprintf(words[0], 24, "%d", target);
  argv[a++] = words[0];
  unsigned long inside = 1;
  int w = 1;
  for (int i = -1; i < n; i++) {
    snprintf(words[w], 24, "%lu", i < 0 ? 0UL : inside);
    snprintf(words[w + 1], 24, "%lu", i < 0 ? (unsigned long)id : r[i].start);
    snprintf(words[w + 2], 24, "%lu", i < 0 ? 1UL : r[i].count);
    for (int k = 0; k < 3; k++) argv[a++] = words[w + k];
    if (i >= 0) inside += r[i].count;
    w += 3;
  }
  argv[a] = NULL;
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) die("pipe", errno);
  h->pid = fork();
  if (h->pid < 0) die("fork", errno);
  if (h->pid == 0) {
    dup2(p[1], 1);
    dup2(p[1], 2);
    execv(h->path, argv);
    fprintf(stderr, "cannot run %s: %s", h->path, strerror(errno));
    _exit(127);
  }
  close(p[1]);
  h->err_fd = p[0];
}

// Waits for a helper; 0 when it succeeded, else its output is in h->err.
static int finish_helper(struct helper* h) {
  size_t n = 0;
  ssize_t r;
  while ((r = read(h->err_fd, h->err + n, sizeof h->err - 1 - n)) != 0) {
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    n += (size_t)r;
    if (n == sizeof h->err - 1) break;
  }
  close(h->err_fd);
  while (n > 0 && (h->err[n - 1] == '\n' || h->err[n - 1] == ' ')) n--;
  h->err[n] = 0;
  while (waitpid(h->pid, &h->status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(h->status) && WEXITSTATUS(h->status) == 0 ? 0 : -1;
}

// ---- The namespace child.

struct child {
  pid_t pid;
  int sync_fd;  // the maps are there: send the record (release_child); closed: exit
};

static int write_file(const char* path, const char* text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n = write(fd, text, strlen(text));
  int err = n < 0 ? errno : 0;
  close(fd);
  return err;
}

// Whether a fresh /proc can be mounted here (as runc will for RUN steps): in a
// throwaway pid + mount namespace. 0 or the errno of the mount.
static int probe_fresh_proc(void) {
  pid_t p = fork();
  if (p < 0) return errno;
  if (p == 0) {
    if (unshare(CLONE_NEWPID | CLONE_NEWNS) < 0) _exit(errno);
    pid_t q = fork();  // the new pid namespace starts with our next child
    if (q < 0) _exit(errno);
    if (q == 0) {
      if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) _exit(errno);
      _exit(mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ? errno : 0);
    }
    int st;
    while (waitpid(q, &st, 0) < 0)
      if (errno != EINTR) _exit(ECHILD);
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : ECHILD);
  }
  int st;
  while (waitpid(p, &st, 0) < 0)
    if (errno != EINTR) return ECHILD;
  return WIFEXITED(st) ? WEXITSTATUS(st) : ECHILD;
}

static char** g_argv;   // what the child execs
static double g_start;  // epoch ms when the launcher started
static int g_img;       // the program is img's own (`img` mode), which takes the deferred CA file back

// Node 20 reads and parses NODE_EXTRA_CA_CERTS as it starts (about 40 ms here), though most img
// commands never open a TLS connection. For img's own program the launcher moves it aside;
// img puts it back in its environment first thing (lib/cli/launch.ts takeBackDeferredEnv), for
// the programs it runs, and the registry transport adds the file to the CAs it trusts
// (lib/registry/transport.ts trustedCAs).
static void exec_program(void) {
  const char* extra = g_img ? getenv("NODE_EXTRA_CA_CERTS") : NULL;
  if (extra) {
    setenv("IMG_DEFERRED_EXTRA_CA_CERTS", extra, 1);
    unsetenv("NODE_EXTRA_CA_CERTS");
  }
  execvp(g_argv[0], g_argv);
  die(g_argv[0], errno);
}

// In the namespace, released: finish the record, exec PROGRAM.
static void become_program(uid_t uid, gid_t gid) {
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die("mount --make-rprivate /", errno);
  int proc = probe_fresh_proc();
  put_string("proc", proc ? "host" : "fresh");
  if (proc) put_string("procErrno", errno_name(proc));
  put_number("launchedAt", g_start);
  put_number("launcherMs", epoch_ms() - g_start);
  put("}");
  char num[32];
  snprintf(num, sizeof num, "%u", uid);
  setenv("IMG_HOST_UID", num, 1);
  snprintf(num, sizeof num, "%u", gid);
  setenv("IMG_HOST_GID", num, 1);
  setenv("IMG_USERNS", "1", 1);
  setenv("IMG_ENTRY", record, 1);
  exec_program();
}

// Forks a child that unshares a user + mount namespace and waits for its maps.
// Returns 0, or the errno of unshare (the child is gone then).
static int spawn_child(struct child* c) {
  int ready[2], sync[2];
  if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(sync, O_CLOEXEC) < 0) die("pipe", errno);
  pid_t parent = getpid();
  c->pid = fork();
  if (c->pid < 0) die("fork", errno);
  if (c->pid == 0) {
    close(ready[0]);
    close(sync[1]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the launcher, even by SIGKILL
    if (getppid() != parent) _exit(1);
    int err = unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0 ? errno : 0;
    (void)!write(ready[1], &err, sizeof err);
    if (err) _exit(1);
    // The record as the launcher finished it; EOF without one: give up.
    size_t got = 0;
    ssize_t n;
    while ((n = read(sync[0], record + got, sizeof record - 1 - got)) != 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) _exit(1);
      got += (size_t)n;
    }
    if (got == 0) _exit(1);
    record[got] = 0;
    record_len = got;
    close(sync[0]);
    return -1;  // in the child: the caller goes on with become_program
  }
  close(ready[1]);
  close(sync[0]);
  int err = ECHILD;
  ssize_t n;
  do n = read(ready[0], &err, sizeof err);
  while (n < 0 && errno == EINTR);
  close(ready[0]);
  if (n != sizeof err) err = ECHILD;
  c->sync_fd = sync[1];
  if (err) {
    close(c->sync_fd);
    waitpid(c->pid, NULL, 0);
  }
  return err;
}

// Lets the child go on: it reads the record up to EOF.
static void release_child(struct child* c) {
  size_t off = 0;
  while (off < record_len) {
    ssize_t n = write(c->sync_fd, record + off, record_len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("release the namespace child", errno);
    off += (size_t)n;
  }
  close(c->sync_fd);
}

static void abandon_child(struct child* c) {
  close(c->sync_fd);
  while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR) {
  }
}

// ---- The relay.

static volatile pid_t g_child;
static void forward(int sig, siginfo_t* info, void* ctx) {
  (void)ctx;
  // A terminal's signals go to the whole foreground process group: the child has its own.
  if (info->si_code == SI_KERNEL) return;
  if (g_child > 0) kill(g_child, sig);
}

static void relay(pid_t child) {
  g_child = child;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = forward;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++) sigaction(forwarded[i], &sa, NULL);
  int st = 0;
  for (;;) {
    pid_t p = waitpid(-1, &st, 0);  // -1: as a container's pid 1, orphans are ours to reap
    if (p == child) break;
    if (p < 0 && errno != EINTR) die("waitpid", errno);
  }
  if (WIFEXITED(st)) exit(WEXITSTATUS(st));
  int sig = WTERMSIG(st);
  if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGKILL || sig == SIGPIPE) {
    // Die the same way, so a shell sees what happened (pid 1 ignores it: then the code).
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
  }
  exit(128 + sig);
}

// ---- Entry.

static void run_outside(void) { exec_program(); }

// Tries the mappings in order and execs PROGRAM; returns only in the relay.
static void enter(void) {
  uid_t uid = getuid();
  gid_t gid = getgid();
  struct passwd* pw = getpwuid(uid);
  const char* user = pw ? pw->pw_name : NULL;
  // Without HOME, Node inside would take the namespace root's home (getpwuid(0): /root) for the
  // state and cache dirs, not the one commands outside the namespace (img ls) use.
  const char* home = getenv("HOME");
  if ((!home || !*home) && pw && pw->pw_dir && *pw->pw_dir) setenv("HOME", pw->pw_dir, 1);
  const char* subuid_file = getenv("IMG_SUBUID_FILE");
  const char* subgid_file = getenv("IMG_SUBGID_FILE");
  if (!subuid_file || !*subuid_file) subuid_file = "/etc/subuid";
  if (!subgid_file || !*subgid_file) subgid_file = "/etc/subgid";
  struct range subuid[MAX_RANGES], subgid[MAX_RANGES];
  int nuid = read_ranges(subuid_file, user, uid, subuid);
  int ngid = read_ranges(subgid_file, user, uid, subgid);
  struct helper hu = {.name = "newuidmap"}, hg = {.name = "newgidmap"};
  put("{\"via\":\"img-launch\"");
  if (user) put_string("user", user);

  const char* cause = NULL;  // why not the subordinate ranges
  if (nuid == 0 || ngid == 0) {
    cause = "no-ranges";
    char files[1024];
    if (nuid == 0 && ngid == 0) snprintf(files, sizeof files, "%s and %s", subuid_file, subgid_file);
    else snprintf(files, sizeof files, "%s", nuid == 0 ? subuid_file : subgid_file);
    put_string("noRangesIn", files);
  } else if (!find_helper(hu.name, hu.path, sizeof hu.path) || !find_helper(hg.name, hg.path, sizeof hg.path)) {
    cause = "no-helper";
    put_string("helper", hu.path[0] && access(hu.path, X_OK) == 0 ? hg.name : hu.name);
  }

  const char* failed_syscall = "unshare(CLONE_NEWUSER)";  // when no mapping works
  struct child c;
  int err = spawn_child(&c);
  if (err < 0) become_program(uid, gid);
  if (!err && !cause) {
    start_helper(&hu, c.pid, uid, subuid, nuid);
    start_helper(&hg, c.pid, gid, subgid, ngid);
    int ru = finish_helper(&hu);
    int rg = finish_helper(&hg);
    if (ru == 0 && rg == 0) {
      put_string("mapping", "subids");
      put_int("uidRanges", nuid);
      put_int("gidRanges", ngid);
    } else {
      // A map, once written, stays: start over in a fresh child with the single-id map.
      struct helper* f = ru ? &hu : &hg;
      cause = "helper-failed";
      put_string("helper", f->path);
      put_int("helperStatus", WIFEXITED(f->status) ? WEXITSTATUS(f->status) : 128 + WTERMSIG(f->status));
      put_string("helperStderr", f->err);
      abandon_child(&c);
      err = spawn_child(&c);
      if (err < 0) become_program(uid, gid);
    }
  }
  if (!err && cause) {
    char map[64];
    put_string("mapping", "single");
    put_string("cause", cause);
    snprintf(map, sizeof map, "/proc/%d/setgroups", c.pid);
    int werr = write_file(map, "deny");
    if (!werr) {
      char line[48];
      snprintf(map, sizeof map, "/proc/%d/uid_map", c.pid);
      snprintf(line, sizeof line, "0 %u 1\n", uid);
      werr = write_file(map, line);
      if (!werr) {
        snprintf(map, sizeof map, "/proc/%d/gid_map", c.pid);
        snprintf(line, sizeof line, "0 %u 1\n", gid);
        werr = write_file(map, line);
      }
    }
    if (werr) {
      abandon_child(&c);
      record_len = 0;
      put("{\"via\":\"img-launch\"");
      failed_syscall = "write /proc/PID/uid_map";
      err = werr;
    }
  }
  if (err) {
    put_string("mapping", "none");
    put_string("errno", errno_name(err));
    put_string("syscall", failed_syscall);
    put_number("launchedAt", g_start);
    put_number("launcherMs", epoch_ms() - g_start);
    put("}");
    setenv("IMG_ENTRY", record, 1);
    run_outside();
  }
  release_child(&c);
  relay(c.pid);
}

int main(int argc, char** argv) {
  g_start = epoch_ms();
  if (argc >= 2 && !strcmp(argv[1], "decide")) {
    puts(needs_namespace(argc - 2, argv + 2) ? "enter" : "skip");
    return 0;
  }
  int wanted;
  if (argc >= 4 && !strcmp(argv[1], "img")) {
    int n = atoi(argv[2]);
    if (n < 1 || 3 + n > argc) goto usage;
    g_argv = argv + 3;
    g_img = 1;
    wanted = needs_namespace(argc - 3 - n, argv + 3 + n);
  } else if (argc >= 3 && !strcmp(argv[1], "enter")) {
    g_argv = argv + 2;
    wanted = 1;
  } else {
    goto usage;
  }
  // Real root needs no namespace; a process already inside must not nest another.
  const char* inside = getenv("IMG_USERNS");
  if (!wanted || getuid() == 0 || (inside && !strcmp(inside, "1"))) run_outside();
  enter();
  return 0;
usage:
  fprintf(stderr,
          "usage: img-launch img N PROGRAM [ARG...] IMG-ARG...\n"
          "       img-launch enter PROGRAM [ARG...]\n"
          "       img-launch decide IMG-ARG...\n");
  return 2;
}
