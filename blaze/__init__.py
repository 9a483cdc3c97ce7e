"""blaze-spark: cost-based automatic caching for PySpark.

Public surface (grows with the cache manager)::

    import blaze
    spark = blaze.session()          # local SparkSession with the project's defaults
"""

from blaze.errors import BlazeError, ConfigError, InputError, JavaError
from blaze.session import session

__all__ = ["BlazeError", "ConfigError", "InputError", "JavaError", "session"]
