"""Test suites run through the PBX: each scenario a test call between a simulated caller and
the assistant under test (``runs.py`` the runs, ``suites.py`` what no schema states of a suite,
``judging.py`` the expectations judged from what the caller heard and the call left,
``tool_mocks.py`` the tools answered with canned results, ``test_calls.py`` what a test call
needs of the PBX and the node's speech)."""
