"""The bounded pool the consent actions run in, so that the action server's loop never waits.

rasa_sdk runs every action on one asyncio event loop. The consent service is called with
`requests` (the project's one HTTP client of the service), which blocks, and retries after a
pause; run on the loop, one resident's call to a slow service would hold every other resident's
turn. The actions that call the service therefore have an `async def run` that hands their
synchronous step to :func:`in_worker`: the step (calls, retries and their pauses) runs in a
thread of one module-level pool of `ACTION_WORKER_THREADS` threads, created on first use.
Nothing happens at import.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, TypeVar

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.settings import get_settings

T = TypeVar("T")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def executor() -> ThreadPoolExecutor:
    """The process's pool for calls to the consent service, created on first use.

    Returns:
        A pool of `ACTION_WORKER_THREADS` threads (at least one).
    """
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=max(1, get_settings().action_worker_threads),
                thread_name_prefix="consent-call",
            )
        return _executor


async def in_worker(function: Callable[..., T], *args: Any) -> T:
    """Run `function(*args)` in the pool and wait for it without blocking the event loop.

    Args:
        function: A synchronous step that may call the consent service.
        *args: Its arguments.

    Returns:
        What `function` returned (its exception is raised here).
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor(), functools.partial(function, *args))


class ServiceAction(Action, metaclass=abc.ABCMeta):
    """An action whose step calls the consent service: run in the pool, awaited by the loop.

    Subclasses write their synchronous step as :meth:`step`; rasa_sdk awaits :meth:`run`. The
    class itself is abstract, so rasa_sdk does not register it as an action.
    """

    @abc.abstractmethod
    def step(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """The action's synchronous step (it may block on the consent service).

        Args:
            dispatcher: Where the answers go.
            tracker: The conversation.
            domain: The domain the action received.

        Returns:
            The events of the step.
        """
        raise NotImplementedError

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """Run :meth:`step` in the pool; the event loop serves other residents meanwhile.

        Args:
            dispatcher: Where the answers go.
            tracker: The conversation.
            domain: The domain the action received.

        Returns:
            The events of the step.
        """
        return await in_worker(self.step, dispatcher, tracker, domain)
