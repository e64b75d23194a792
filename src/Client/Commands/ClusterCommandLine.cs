using System.CommandLine;
using DistEmu.Silo;

namespace DistEmu.Client;

/// <summary><c>distemu cluster status</c>: the silos of a cluster and the grains each hosts.</summary>
internal static class ClusterCommandLine
{
    public static Command Create(TextWriter stdout)
    {
        var cluster = OptionKinds.Text("--cluster",
            "URL",
            "the cluster's membership table: redis://HOST:PORT or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (default: $DISTEMU_CLUSTER, else redis://127.0.0.1:6379)");
        var clusterId = OptionKinds.Text("--cluster-id", "ID", "the cluster's id (default: distemu)");
        var serviceId = OptionKinds.Text("--service-id", "ID", "the cluster's service id (default: distemu)");
        var status = new Command("status", "Lists the silos of a cluster (address, status) and, per silo, the DistEmu grains it hosts by emulated node and kind.")
        {
            cluster, clusterId, serviceId,
        };
        status.SetAction(p =>
        {
            string connection = p.GetValue(cluster)
                ?? (Environment.GetEnvironmentVariable("DISTEMU_CLUSTER") is { Length: > 0 } env ? env : "redis://127.0.0.1:6379");
            return ClusterStatus.Run(ClusterTarget.Parse(connection, p.GetValue(clusterId), p.GetValue(serviceId)), stdout);
        });
        var command = new Command("cluster", "cluster status: the silos of a cluster and the grains each hosts (distemu cluster status --help)") { status };
        command.SetAction(int (_) => throw new UsageException("cluster: expected 'status' (distemu cluster status [--cluster URL])"));
        return command;
    }
}
