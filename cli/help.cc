// The text of `crucible --help`. Kept apart from the parser so that each
// stays readable; docs/user-guide.md explains the same in more words.
#include "cli/args.h"

namespace cli {

std::string HelpText() {
  return R"(crucible: run tasks in hardened containers on a Crucible server.

Usage:
  crucible [GLOBAL FLAGS] COMMAND [FLAGS] [-- ARGS]

Commands:
  submit --image IMG [FLAGS] [--] CMD ARGS...
      Creates a task, streams its stdout/stderr to this process's stdout/stderr
      and exits with the task's exit code (see below). With -o json, prints the
      ended task as JSON instead of its output.
        --image IMG              container image (required)
        --env, -e K=V            environment variable (repeatable)
        --label, -l k=v          label, for list --label (repeatable)
        --stdin FILE             bytes for the task's stdin; - reads this stdin
        --workdir, -w DIR        working directory in the container
        --file LOCAL=REMOTE      put a local file at REMOTE (relative to the
                                 working directory) before the task starts
                                 (repeatable; 0755 if LOCAL is executable)
        --artifact PATTERN       collect matching files of the working
                                 directory after the task exits (repeatable;
                                 * ? [...] match within one name)
        --scratch SIZE           size of the scratch working directory that
                                 --file and --artifact use
        --out DIR                once the task has ended, write its collected
                                 artifacts under DIR, as artifacts --out does
                                 (needs --artifact; each file written is said
                                 on stderr; the task's exit code wins over a
                                 failed download's)
        --timeout DUR            wall-clock limit of an attempt: 30s, 5m, 1h30m
        --memory SIZE            memory limit: 64Mi, 1Gi, 500M
        --cpu CPUS               CPU limit in cores: 0.5, 2, 250m
        --pids N                 most processes/threads in the container
        --tmpfs SIZE             size of the writable /tmp
        --max-output SIZE        stdout+stderr kept; past it the task is killed
        --priority N             higher runs first (default 0)
        --attempts N             total attempts on infrastructure failures
                                 (default: the server's)
        --retry-on-nonzero-exit  also retry when the process exits non-zero
        --request-id ID          idempotency key: a retry returns the same task
                                 (default: a random one; submit retries
                                 CreateTask with it when the server is
                                 unavailable or slow, never making two tasks)
        --detach, -d             print the task id and exit 0 without waiting
        --cancel-on-interrupt    Ctrl-C cancels the task without asking
      Ctrl-C while following: on a terminal, asks whether to cancel the task;
      otherwise stops following (exit 75) and the task keeps running.
      Limits left out take the executor's defaults.
  submit --from-file FILE [--request-id RUN]
      Creates the tasks of FILE ("-": stdin), one TaskSpec per line in the
      protobuf JSON mapping, e.g. {"image": "IMG", "command": ["echo", "hi"]};
      blank lines and lines starting with # are skipped. Sends them in
      batches of up to 1000 (BatchCreateTasks), prints each created task's id
      in file order (-o json: the task) and does not follow them; a progress
      line shows on a terminal. A bad line or a task the server refuses is
      said on stderr as "line N: why", the others are still created, and the
      exit code is 1. Each line's request_id comes from its text (and RUN):
      submitting the same file again, e.g. after a failure, answers the tasks
      made the first time and makes only the missing ones; to run a suite
      again as new tasks, give a new --request-id RUN.
  get ID                 shows one task
  artifacts ID [--out DIR [--attempt N]]
                         lists what became of each artifact of the task's
                         latest ended attempt: its size and SHA-256 if
                         collected, else why not. --out DIR fetches every
                         collected one (GetArtifact) into DIR/PATH, making
                         directories and replacing files already there, and
                         prints each file written; the bytes are checked
                         against the size and SHA-256 the server announced
                         and a mismatch is an error that leaves no file. A
                         path that is absolute or has an empty, . or .. name
                         is refused whatever the server says. Artifacts that
                         were not collected (over the limit, not found, not
                         a regular file, lost on the way to the server) are
                         said on stderr and do not change the exit code: 0
                         once every collected one is written. --attempt N
                         fetches them from attempt N. -o json: one
                         ArtifactInfo per line (with --out, of each file
                         written, its local path as "file").
  list [--state S] [--label k=v] [--limit N] [--page-token T] [--watch]
       [--all-tenants]
                         lists your tenant's tasks (every tenant's with
                         --all-tenants, for admins), newest first (default
                         limit 50); S is one
                         of queued, leased, running, succeeded, failed,
                         timed_out, cancelled (repeatable or comma-separated).
                         When more tasks match than --limit, the token of the
                         next page is printed on stderr. --watch (-w) polls
                         every --interval (default 2s) and prints each task
                         again when its state changes, until Ctrl-C.
  cancel ID [--reason R] [--wait]
                         cancels a task; a running one ends once its container
                         is gone. --wait waits for that and exits like watch.
  logs ID [--follow|-f] [--stdout|--stderr] [--offset N] [--attempt N]
                         prints a task's output (the latest attempt unless
                         --attempt); --follow keeps printing until it ends;
                         --offset N starts at byte N of the attempt's combined
                         output.
  watch ID               prints each state change until the task ends, then
                         exits like submit
  health [ADDR] [--service NAME]
                         asks a server, worker or executor (grpc.health.v1)
                         whether it serves; exit 0 if SERVING, 1 if not
  token create --name N --tenant T [--role reader|user|admin] [--ttl DUR]
                         (admins) makes an API token for tenant T (role
                         default user; --ttl: it expires, e.g. 720h) and
                         prints its secret once
  token list             (admins) lists the tokens, never their secrets
  token revoke ID        (admins) calls with that token fail from now on
  help                   this text

Global flags (anywhere before "--"):
  --server HOST:PORT     server address; default $CRUCIBLE_SERVER, else 127.0.0.1:8080;
                         ipv4:HOST:PORT,HOST:PORT,... for the servers of one
                         PostgreSQL store (calls go to the one that leads)
  --token TOKEN          API token or JWT, sent as "authorization: Bearer
                         TOKEN"; default $CRUCIBLE_TOKEN. It decides your
                         tenant (whose tasks you see) and role
  --tls                  connect with TLS, trusting the system's roots
  --tls-ca FILE          connect with TLS, trusting the roots in FILE (PEM);
                         default $CRUCIBLE_TLS_CA; alias --ca-cert
  --tls-cert FILE        client certificate (PEM) for servers that ask for
                         one (an executor); default $CRUCIBLE_TLS_CERT
  --tls-key FILE         its private key; default $CRUCIBLE_TLS_KEY
  --tls-server-name NAME the name the server's certificate must carry, when
                         it is not the host of --server (a port-forward);
                         default $CRUCIBLE_TLS_SERVER_NAME
  -o, --output FORMAT    text (default) or json: the protobuf JSON mapping,
                         one object per line
  -h, --help             this text

Exit codes:
  0     success (submit, watch: the task SUCCEEDED)
  1-255 submit, watch: the task FAILED and its process exited with this code
  1     a request failed (the server's error is printed, e.g.
        UNAUTHENTICATED: no or bad token; PERMISSION_DENIED: the token's role
        may not do this), or not SERVING
  2     usage error
  69    infrastructure: the server is unavailable or did not answer in time,
        or the task FAILED because Crucible itself failed (worker lost, engine
        unavailable) after its retries
  75    Ctrl-C stopped following (the task keeps running) or fetching
        artifacts
  124   the task TIMED_OUT
  125   the task FAILED without an exit code of its own (out of memory,
        output limit, refused by the executor)
  130   the task was CANCELLED
A task's own exit code may coincide with these; `crucible get ID` tells.
)";
}

}  // namespace cli
