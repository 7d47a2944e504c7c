"""The transfer dialogue: what the caller and the agent hear, and what the agent's answer means.

* ``briefing``: the announcement to the caller and the briefing's text for the agent (the
  command's summary, the assistant's LLM, or an offline template);
* ``agent``: what a warm transfer says to the agent and how it hears them, ``AgentDialogue``
  (the ``pbx.base.WarmDialogue`` the PBX adapters are given: the briefing's words and voice,
  the offline Piper / espeak-ng default, and the voice decision);
* ``decision``: the agent's spoken "yes" / "no" (webrtcvad endpointing, the STT, the words;
  the STT through the node's recognition pool when it has one: ``NodeTranscriber``).

The PBX adapters keep the primitives (hold the caller, dial the agent, play on a leg, a leg's
frames and digits, bridge or return the caller); see docs/transfers.md.
"""
