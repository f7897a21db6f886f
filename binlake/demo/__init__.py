"""The embedded demo: a private MariaDB with sample data, a workload, and the whole pipeline."""
