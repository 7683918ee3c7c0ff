"""Amazon Bedrock: the Converse / ConverseStream API, SigV4-signed with the AWS credential chain."""
