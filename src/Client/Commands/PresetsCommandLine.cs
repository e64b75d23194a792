using System.CommandLine;
using System.Globalization;
using DistEmu.Kernel.Machine;

namespace DistEmu.Client;

/// <summary><c>distemu presets</c>: the machine presets in presets/*.yaml with their sizes.</summary>
internal static class PresetsCommandLine
{
    public static Command Create(TextWriter stdout)
    {
        var command = new Command("presets", "list the machine presets in presets/*.yaml: name, nodes, CPUs, memory");
        command.SetAction(_ => List(stdout));
        return command;
    }

    private static int List(TextWriter stdout)
    {
        var rows = MachineLoader.PresetNames().Select(n =>
        {
            var m = MachineLoader.LoadPreset(n);
            return new[]
            {
                n, m.Nodes.ToString(CultureInfo.InvariantCulture), m.Cpus.ToString(CultureInfo.InvariantCulture),
                MachineLoader.FormatBytes(m.MemoryPerNodeBytes), MachineLoader.FormatBytes(m.MemoryBytes), m.Policy.Name(),
            };
        }).ToList();
        stdout.Write(Report.Table(["preset", "nodes", "cpus", "memory/node", "memory", "policy"], rows));
        return 0;
    }
}
