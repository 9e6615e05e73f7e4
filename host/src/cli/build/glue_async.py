

# wasya:actor@0.2.0: many calls at once in one instance, each an asyncio task of the
# one event loop componentize-py runs. What a call prints is kept per call (a context
# variable) and sent to the node's log with its envelope id.
import asyncio
import sys

import componentize_py_async_support as _support
from wit_world.imports import log as _log
from wit_world.imports import monotonic_clock as _clock

# One context variable for the glue and wasya_http (which carries the call's trace
# context on to its requests).
_CALL = wasya_http._CALL


class _Call:
    """What the glue keeps of the call running in this context."""

    def __init__(self, msg):
        self.id = msg.id
        self.headers = {header.name: header.value for header in msg.headers}
        self.pending = {"stdout": "", "stderr": ""}


def current_call():
    """The call running in this context (its envelope id and headers), or None."""
    return _CALL.get()


class _CallOutput:
    """sys.stdout or sys.stderr: each call's lines go to the node's log, with its id."""

    def __init__(self, name, fallback):
        self._name = name
        self._fallback = fallback

    def write(self, text):
        call = _CALL.get()
        if call is None:
            return self._fallback.write(text)
        pending = call.pending[self._name] + text
        *lines, rest = pending.split("\n")
        call.pending[self._name] = rest
        for line in lines:
            _log.log(call.id, _log.Level.INFO, line)
        return len(text)

    def flush(self):
        call = _CALL.get()
        if call is not None and call.pending[self._name]:
            _log.log(call.id, _log.Level.INFO, call.pending[self._name])
            call.pending[self._name] = ""

    def isatty(self):
        return False


sys.stdout = _CallOutput("stdout", sys.stdout)
sys.stderr = _CallOutput("stderr", sys.stderr)

_NO_TIMERS = (
    "asyncio timers (call_later, wait_for, timeout) are not available in a wasya async actor; "
    "the node bounds every call with the actor's timeout, and asyncio.sleep works"
)


def _no_timer(*_args, **_kwargs):
    raise NotImplementedError(_NO_TIMERS)


def _log_exception(_loop, context):
    # componentize-py's loop would end the whole instance on an exception no one
    # retrieved (a task that failed and was never awaited): log it instead.
    call = _CALL.get()
    message = context.get("message", "an asyncio task failed")
    error = context.get("exception")
    line = f"{message}: {type(error).__name__}: {error}" if error is not None else message
    _log.log(call.id if call else "", _log.Level.WARN, line)


_Loop = type(_support._loop)
_Loop.call_later = _no_timer
_Loop.call_at = _no_timer
_Loop.time = lambda _self: _clock.now() / 1e9
_Loop.call_exception_handler = _log_exception

_sleep = asyncio.sleep


async def _clock_sleep(delay, result=None):
    """asyncio.sleep on the WASI clock (the loop has no timers of its own)."""
    if delay > 0:
        await _clock.wait_for(int(delay * 1_000_000_000))
    else:
        await _sleep(0)
    return result


asyncio.sleep = _clock_sleep


class WitWorld(wit_world.WitWorld):
    async def handle(self, msg):
        call = _Call(msg)
        _CALL.set(call)
        try:
            result = HANDLE(_argument(msg))
            if inspect.isawaitable(result):
                result = await result
            return _outputs(result)
        except BaseException as error:  # noqa: BLE001 - an escaping one would end the instance
            raise Err(
                types.ActorError(
                    kind=type(error).__name__,
                    message=str(error),
                    traceback=traceback.format_exc(),
                )
            )
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
