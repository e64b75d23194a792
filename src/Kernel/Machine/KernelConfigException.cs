namespace DistEmu.Kernel.Machine;

/// <summary>
/// The one typed error for invalid machine, policy or workload parameters. It names the field and the
/// value so that a command line can print "field: value: reason" and exit with code 2.
/// </summary>
public sealed class KernelConfigException : Exception
{
    public string Field { get; }
    public string Value { get; }
    public string Reason { get; }

    public KernelConfigException(string field, object? value, string reason)
        : base($"{field} = {Format(value)}: {reason}")
    {
        Field = field;
        Value = Format(value);
        Reason = reason;
    }

    private static string Format(object? value) => value switch
    {
        null => "(missing)",
        string s => s,
        System.Collections.IEnumerable e => "[" + string.Join(", ", e.Cast<object?>()) + "]",
        _ => value.ToString() ?? "",
    };
}
