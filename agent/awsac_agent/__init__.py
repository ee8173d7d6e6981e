"""awsac_agent: the instance side of awsac, plus the formats client and agent share.

Runs on the instance with the standard library and boto3 only (Python 3.9+).
"""

__version__ = "0.1.0"
