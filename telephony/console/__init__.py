"""`telephony console`: the operators' web console, a process of its own (issue 14).

It reads the audit store and keeps its own AMI session; nothing it does can stall
`telephony serve`. Its actions enter the audit chain as AMI UserEvents (``ConsoleAction``)
that serve's writer records like every other event (see :mod:`telephony.console.actions`).
"""
