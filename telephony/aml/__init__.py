"""Handset location (Advanced Mobile Location, Android ELS) per ETSI TS 103 625.

``fix`` holds the record both transports parse into and the typed rejection reasons;
``form`` parses the HTTPS form, ``sms`` the SMS text; ``senders`` the configured senders and
their authentication; ``store`` the table; ``matching`` which call a fix belongs to;
``receiver`` the HTTPS endpoint; ``routing`` the queue move a fix can cause.
"""
