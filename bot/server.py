"""The assistant's Rasa server: Rasa's own command line with a run-time fix applied first.

Started as `python -m bot.server run ...` (same arguments as `rasa run`) by `make run`, the e2e
tests and the benchmark.

The fix: Rasa 3.6 checks every custom action's answer with `jsonschema.validate`, which first
validates Rasa's response *schema* against JSON Schema's meta-schema, every time. That costs
about 100 ms of CPU per custom action call on a small machine — more than the rest of a turn —
so every consent turn paid it (measured with cProfile; see docs/benchmarks.md). Here the schema
is checked once and the validator reused: the same check of the same answer, with the same
error when an answer is malformed.
"""

from __future__ import annotations

import functools
from typing import Any, Dict

_INSTALLED = False


@functools.lru_cache(maxsize=1)
def _action_response_validator() -> Any:
    """A validator for Rasa's custom-action response format, its schema checked once."""
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def validate_action_result(self: Any, result: Dict[str, Any]) -> bool:
    """`RemoteAction._validate_action_result` with the validator built once.

    Args:
        self: The remote action whose answer is checked.
        result: The action server's answer.

    Returns:
        True when the answer is valid.

    Raises:
        jsonschema.ValidationError: The answer does not follow Rasa's format (as Rasa raises it).
    """
    from jsonschema.exceptions import best_match
    from rasa.shared.constants import DOCS_BASE_URL

    error = best_match(_action_response_validator().iter_errors(result))
    if error is not None:
        error.message += (
            ". Failed to validate Action server response from API, make sure your response "
            "from the Action endpoint is valid. For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error
    return True


def install() -> None:
    """Apply the run-time fix to Rasa (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from rasa.core.actions.action import RemoteAction

    RemoteAction._validate_action_result = validate_action_result
    _INSTALLED = True


def main() -> None:
    """Run Rasa's command line (`rasa run ...`) with the fix installed."""
    install()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
