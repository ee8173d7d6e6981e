"""The Textual user interface of awsac: screens, widgets and the backend they talk to."""
