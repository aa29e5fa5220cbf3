"""The benchmark harness: corpus tools, realistic queries, systems under test and reports."""
