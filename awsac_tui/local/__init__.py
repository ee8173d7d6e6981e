"""The local cloud: an EC2/S3/SimpleDB emulator service with an instance runner (awsac local ...)."""
