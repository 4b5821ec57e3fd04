"""What the users review, read from the warehouse the ETL builds: a Tableau extract
(``airline-extract``) and a self-contained HTML report (``airline-report``)."""
