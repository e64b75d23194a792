namespace DistEmu.Client;

/// <summary>Bad input from the user: printed as one line "distemu: error: ..." and exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);
