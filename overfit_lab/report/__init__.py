"""Terminal and (later) HTML reports."""
