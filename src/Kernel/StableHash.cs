namespace DistEmu.Kernel;

/// <summary>
/// FNV-1a over a string's UTF-16 units: the same in every process and on every silo. string.GetHashCode is randomised
/// per process, so nothing that reaches an event log, a seed or a file may use it.
/// </summary>
public static class StableHash
{
    public static ulong Of(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in s) h = unchecked((h ^ c) * 1099511628211UL);
        return h;
    }
}
