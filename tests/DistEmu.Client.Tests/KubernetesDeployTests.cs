using DistEmu.Silo;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Hosting.Kubernetes;
using YamlDotNet.RepresentationModel;

namespace DistEmu.Client.Tests;

/// <summary>
/// deploy/k8s cannot be applied here (no cluster), so the manifests are checked against the code: the silo's arguments
/// parse, the downward-API variables and pod labels are the ones Orleans' Kubernetes hosting reads, and the silo built
/// with --kubernetes takes its address and cluster id from the pod but keeps our ports.
/// </summary>
public sealed class KubernetesDeployTests
{
    private static List<YamlMappingNode> Manifests(string file)
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d != null && !File.Exists(Path.Combine(d.FullName, "DistEmu.sln"))) d = d.Parent;
        var yaml = new YamlStream();
        using var reader = new StreamReader(Path.Combine(d!.FullName, "deploy", "k8s", file));
        yaml.Load(reader);
        return yaml.Documents.Select(doc => (YamlMappingNode)doc.RootNode).ToList();
    }

    private static string Scalar(YamlNode n, params string[] path) =>
        ((YamlScalarNode)path.Aggregate(n, (node, key) => ((YamlMappingNode)node)[key])).Value!;

    private static YamlMappingNode Kind(List<YamlMappingNode> docs, string kind) => docs.Single(d => Scalar(d, "kind") == kind);

    private static YamlMappingNode PodTemplate() => (YamlMappingNode)Kind(Manifests("silo.yaml"), "Deployment")["spec"]["template"];

    private static YamlMappingNode Container() => (YamlMappingNode)((YamlSequenceNode)PodTemplate()["spec"]["containers"]).Children.Single();

    [Fact]
    public void The_silo_arguments_exist_parse_and_name_the_redis_service()
    {
        var args = ((YamlSequenceNode)Container()["args"]).Children.Select(c => ((YamlScalarNode)c).Value!).ToArray();
        foreach (var opt in args.Where(a => a.StartsWith("--", StringComparison.Ordinal)))
            Assert.Contains(opt, SiloSettings.Help);
        var s = SiloSettings.Parse(args);
        Assert.True(s.Kubernetes);
        Assert.Equal("redis", s.Clustering);
        var ports = ((YamlSequenceNode)Container()["ports"]).Children.Select(p => int.Parse(Scalar(p, "containerPort"))).ToList();
        Assert.Equal([s.SiloPort, s.GatewayPort], ports);
        var redisService = Kind(Manifests("redis.yaml"), "Service");
        Assert.Equal(s.Redis!.Split(':')[0], Scalar(redisService, "metadata", "name"));
        Assert.Contains(s.Redis.Split(':')[1], ((YamlSequenceNode)redisService["spec"]["ports"]).Children.Select(p => Scalar(p, "port")));
    }

    [Fact]
    public void The_pod_passes_what_orleans_kubernetes_hosting_reads()
    {
        var env = ((YamlSequenceNode)Container()["env"]).Children.ToDictionary(e => Scalar(e, "name"), e => Scalar(e, "valueFrom", "fieldRef", "fieldPath"));
        Assert.Equal("metadata.name", env[KubernetesHostingOptions.PodNameEnvironmentVariable]);
        Assert.Equal("metadata.namespace", env[KubernetesHostingOptions.PodNamespaceEnvironmentVariable]);
        Assert.Equal("status.podIP", env[KubernetesHostingOptions.PodIPEnvironmentVariable]);
        Assert.Equal($"metadata.labels['{KubernetesHostingOptions.ClusterIdLabel}']", env[KubernetesHostingOptions.ClusterIdEnvironmentVariable]);
        Assert.Equal($"metadata.labels['{KubernetesHostingOptions.ServiceIdLabel}']", env[KubernetesHostingOptions.ServiceIdEnvironmentVariable]);
        var labels = (YamlMappingNode)PodTemplate()["metadata"]["labels"];
        Assert.True(labels.Children.ContainsKey(new YamlScalarNode(KubernetesHostingOptions.ClusterIdLabel)));
        Assert.True(labels.Children.ContainsKey(new YamlScalarNode(KubernetesHostingOptions.ServiceIdLabel)));
        // The gateway Service and the Deployment's selector both pick the pods the template labels.
        var docs = Manifests("silo.yaml");
        foreach (var selector in new[] { (YamlMappingNode)Kind(docs, "Service")["spec"]["selector"], (YamlMappingNode)Kind(docs, "Deployment")["spec"]["selector"]["matchLabels"] })
            foreach (var (k, v) in selector.Children)
                Assert.Equal(((YamlScalarNode)v).Value, ((YamlScalarNode)labels[k]).Value);
        Assert.Equal(Scalar(Kind(docs, "ServiceAccount"), "metadata", "name"), Scalar(PodTemplate(), "spec", "serviceAccountName"));
    }

    [Fact]
    public void Kubernetes_without_redis_membership_is_refused()
    {
        var e = Assert.Throws<SiloArgsException>(() => SiloSettings.Parse(["--kubernetes"]));
        Assert.Contains("--kubernetes", e.Message);
    }

    [Fact]
    public void A_kubernetes_silo_advertises_the_pod_address_and_cluster_id_on_our_ports()
    {
        // The downward API's variables, as the pod would have them (only Orleans' Kubernetes hosting reads these).
        var pod = new Dictionary<string, string>
        {
            [KubernetesHostingOptions.PodIPEnvironmentVariable] = "10.1.2.3",
            [KubernetesHostingOptions.PodNameEnvironmentVariable] = "distemu-silo-abc",
            [KubernetesHostingOptions.PodNamespaceEnvironmentVariable] = "emu",
            [KubernetesHostingOptions.ClusterIdEnvironmentVariable] = "from-pod",
        };
        foreach (var (name, value) in pod) Environment.SetEnvironmentVariable(name, value);
        try
        {
            using var host = SiloHosting.BuildSilo(SiloSettings.Parse(["--clustering", "redis", "--redis", "127.0.0.1:1", "--kubernetes", "--silo-port", "12000", "--gateway-port", "32000"]));
            var endpoints = host.Services.GetRequiredService<IOptions<EndpointOptions>>().Value;
            Assert.Equal("10.1.2.3", endpoints.AdvertisedIPAddress.ToString());
            Assert.Equal(12000, endpoints.SiloPort);
            Assert.Equal(32000, endpoints.GatewayPort);
            var cluster = host.Services.GetRequiredService<IOptions<ClusterOptions>>().Value;
            Assert.Equal("from-pod", cluster.ClusterId);
            Assert.Equal("distemu", cluster.ServiceId); // not in the pod's environment: ours stays
            Assert.Equal("distemu-silo-abc", host.Services.GetRequiredService<IOptions<SiloOptions>>().Value.SiloName);
        }
        finally
        {
            foreach (var name in pod.Keys) Environment.SetEnvironmentVariable(name, null);
        }
    }
}
