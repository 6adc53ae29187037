"""What a call returned, flattened: the tests that compare or check results of any op,
plan, model method or layer share it."""


def leaves(result):
    """The leaves of a nested result, in order: tuples, lists and dicts (their values)
    flattened, a History by its history dict, None dropped."""
    if hasattr(result, "history") and isinstance(result.history, dict):
        result = result.history
    if isinstance(result, dict):
        result = list(result.values())
    if isinstance(result, (tuple, list)):
        return [leaf for item in result for leaf in leaves(item)]
    return [] if result is None else [result]
