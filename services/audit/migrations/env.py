from servicekit.db import run_migrations_env
from services.audit.db import metadata

run_migrations_env(metadata)
