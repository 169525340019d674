"""Asking the hooks whether a client may connect, without stalling the loop: a hook that may
block (it hashes a password with many iterations, or asks a network service) says so with
``Hook.blocking``, and is called on a worker thread while the loop serves everyone else. Its
``quick_answer`` (a cache) is tried first, on the loop, so a known answer costs no thread.

The hooks are asked in order, each on the thread it is made for; the first refusal ends it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from ..hooks import ClientInfo, Hook, Hooks, hook_failed

# Worker threads for blocking hooks. hashlib's PBKDF2 and socket calls release the GIL, so
# they run beside the loop's thread; more threads than cores would only queue for them.
WORKERS = max(1, min(4, os.cpu_count() or 1))

Answer = Callable[[bool], None]
Post = Callable[[Callable[[], None]], None]  # runs a callable on the loop's thread


def _no_loop(callback: Callable[[], None]) -> None:
    raise RuntimeError("the broker's loop is not running")


class Authenticator:
    """``ask()`` answers at once when no hook has to block; otherwise it returns None and
    calls ``answer(allowed)`` later, on the loop's thread (through ``post``)."""

    def __init__(self, hooks: Hooks, post: Post = _no_loop) -> None:
        """``post``: runs a callable on the loop's thread (its waker's ``call_soon``)."""
        self._hooks = hooks
        self._post = post
        self._executor: ThreadPoolExecutor | None = None

    def ask(self, client: ClientInfo, password: bytes | None, answer: Answer,
            start: int = 0) -> bool | None:
        hooks = self._hooks.registered
        username = client.username
        for index in range(start, len(hooks)):
            hook = hooks[index]
            method = "quick_answer" if hook.blocking else "on_connect_authenticate"
            try:
                allowed = getattr(hook, method)(client, username, password)
            except Exception:
                hook_failed(hook, method, "refused")
                return False
            if allowed is None and hook.blocking:
                self._in_worker(hook, index, client, password, answer)
                return None
            if not allowed:
                return False
        return True

    def _in_worker(self, hook: Hook, index: int, client: ClientInfo, password: bytes | None,
                   answer: Answer) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="mqlite-auth")
        future = self._executor.submit(_call, hook, client, password)

        def done(finished: Future[bool]) -> None:  # on the worker thread
            allowed = finished.result()
            self._post(lambda: self._resume(allowed, index, client, password, answer))

        future.add_done_callback(done)

    def _resume(self, allowed: bool, index: int, client: ClientInfo, password: bytes | None,
                answer: Answer) -> None:
        """On the loop's thread: the blocking hook answered; ask the ones after it."""
        if allowed:
            rest = self.ask(client, password, answer, index + 1)
            if rest is None:
                return  # another blocking hook; it answers in its turn
            allowed = rest
        answer(allowed)

    def close(self) -> None:
        """Stop the worker threads (a CONNECT still waiting is closed with its connection)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _call(hook: Hook, client: ClientInfo, password: bytes | None) -> bool:
    try:
        return bool(hook.on_connect_authenticate(client, client.username, password))
    except Exception:
        hook_failed(hook, "on_connect_authenticate", "refused")
        return False
