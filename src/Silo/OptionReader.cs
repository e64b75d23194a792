using System.Globalization;

namespace DistEmu.Silo;

/// <summary>
/// Reads the options of a command line one at a time, as "--name value" or "--name=value": the shared parser of
/// the silo program's and distemu's verbs. Errors go through <paramref name="error"/>, so each program reports them
/// its own way (exit code 2 with one line).
/// </summary>
public sealed class OptionReader(string[] args, Func<string, Exception> error)
{
    private int _i = -1;
    private string? _inline;

    /// <summary>The option being read, without an "=value" part.</summary>
    public string Current { get; private set; } = "";

    /// <summary>The argument as given (for "unknown option" messages).</summary>
    public string Raw => args[_i];

    public bool Next()
    {
        if (++_i >= args.Length) return false;
        string a = args[_i];
        _inline = null;
        int eq = a.IndexOf('=', StringComparison.Ordinal);
        if (a.StartsWith("--", StringComparison.Ordinal) && eq > 0)
        {
            _inline = a[(eq + 1)..];
            a = a[..eq];
        }
        Current = a;
        return true;
    }

    public string Value()
    {
        if (_inline != null) return _inline;
        if (_i + 1 >= args.Length || args[_i + 1].StartsWith("--", StringComparison.Ordinal))
            throw error($"{Current}: missing value");
        return args[++_i];
    }

    public long Long()
    {
        string v = Value();
        return long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out long n) ? n : throw error($"{Current} '{v}': not an integer");
    }

    /// <summary>A "k=v" value (as --param takes): the key must not be empty.</summary>
    public (string Key, string Value) KeyValue()
    {
        string kv = Value();
        int k = kv.IndexOf('=', StringComparison.Ordinal);
        return k > 0 ? (kv[..k], kv[(k + 1)..]) : throw error($"{Current} '{kv}': expected k=v");
    }
}
