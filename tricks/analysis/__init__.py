"""Analysis of stored results: statistics, tables, figures, the report, the regression check. No torch."""
