"""SVG charts as plain strings, shared by the evaluator's and the warehouse's reports."""
