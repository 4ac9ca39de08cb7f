"""Major-incident messages: a short spoken notice for callers from an area, while it lasts.

A supervisor publishes one (console or `telephony message publish`): its text is spoken by
espeak-ng, as the IVR prompts are, into files Asterisk plays; serve keeps the active ones in
memory (:class:`~telephony.messages.live.ActiveMessages`) and the IVR plays the one that
covers a caller right after the welcome (telephony/agi/ivr.py). See docs/wallboard.md.
"""
