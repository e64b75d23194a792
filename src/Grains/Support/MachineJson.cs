using System.Text.Json;
using DistEmu.Kernel.Machine;

namespace DistEmu.Grains.Support;

/// <summary>The machine description travels between grains as the kernel's own MachineSpec in JSON.</summary>
public static class MachineJson
{
    private static readonly JsonSerializerOptions Options = new() { IncludeFields = false };

    public static string Serialize(MachineSpec spec) => JsonSerializer.Serialize(spec, Options);

    public static MachineSpec Deserialize(string json) =>
        (JsonSerializer.Deserialize<MachineSpec>(json, Options) ?? throw new InvalidOperationException("empty machine description")).Validate();
}
