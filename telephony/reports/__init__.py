"""Reports from the audit store: `telephony report` and the console's download (docs/reports.md)."""
