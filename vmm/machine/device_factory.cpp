#include "vmm/machine/device_factory.h"

#include "base/key_values.h"
#include "base/parse.h"
#include "net/tap.h"
#include "vmm/devices/virtio/rng.h"

namespace vmmd {
namespace {

// QEMU's addr= is "SLOT" or "SLOT.FUNCTION" in hex; only function 0 exists here.
Result<int> parseSlot(const std::string& option, const std::string& text) {
  std::string slot = text.substr(0, text.find('.'));
  if (text.find('.') != std::string::npos && text.substr(text.find('.') + 1) != "0") {
    return Error(option + ": addr=" + text + ": only function 0 is supported");
  }
  // Hexadecimal with or without 0x (libvirt writes addr=0x3).
  auto value = parseUnsigned(slot.rfind("0x", 0) == 0 || slot.rfind("0X", 0) == 0 ? slot : "0x" + slot);
  if (!value || *value < 1 || *value > 31) return Error(option + ": addr=" + text + " is not a PCI slot (1-1f)");
  return static_cast<int>(*value);
}

// The ports of one virtio-serial controller: those whose bus= names it ("ID.0"), or, without
// bus=, those given to the first controller.
Result<std::vector<virtio::PortSpec>> takePorts(const std::string& controller_id, bool first_controller,
                                                uint32_t max_ports, const DeviceContext& context) {
  std::vector<virtio::PortSpec> specs;
  std::vector<bool> used_numbers(max_ports, false);
  std::vector<size_t> mine;
  for (size_t i = 0; i < context.ports.size(); ++i) {
    const auto& properties = context.ports[i]->properties;
    auto bus = properties.find("bus");
    bool ours = bus == properties.end() ? first_controller : bus->second == controller_id + ".0";
    if (ours && !(*context.ports_taken)[i]) mine.push_back(i);
  }
  // Explicit nr= first, then virtconsole at 0, then the rest from 1 up.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i : mine) {
      const config::DeviceConfig& port = *context.ports[i];
      auto kv = KeyValues::fromPairs("-device " + port.driver, port.properties);
      const std::string& option = kv.option();
      if ((pass == 0) != kv.has("nr")) continue;
      virtio::PortSpec spec;
      spec.console = port.driver == "virtconsole";
      if (auto nr = kv.take("nr")) {
        auto n = parseUnsigned(*nr);
        if (!n || *n >= max_ports) return Error(option + ": nr=" + *nr + " is not a port number below " + std::to_string(max_ports));
        spec.number = static_cast<uint32_t>(*n);
      } else {
        uint32_t n = spec.console && !used_numbers[0] ? 0 : 1;
        while (n < max_ports && used_numbers[n]) ++n;
        if (n >= max_ports) return Error(option + ": no free port on the virtio-serial bus (max_ports=" + std::to_string(max_ports) + ")");
        spec.number = n;
      }
      if (used_numbers[spec.number]) return Error(option + ": port " + std::to_string(spec.number) + " is taken");
      used_numbers[spec.number] = true;
      auto chardev = kv.take("chardev");
      if (!chardev) return Error(option + ": chardev= is required");
      auto backend = context.host.openPort(*chardev);
      if (!backend) return backend.error().withContext(option);
      spec.backend = std::move(*backend);
      spec.name = kv.take("name").value_or("");
      spec.id = kv.take("id").value_or("");
      (void)kv.take("bus");
      if (auto st = kv.finish(); !st) return st.error();
      (*context.ports_taken)[i] = true;
      specs.push_back(std::move(spec));
    }
  }
  return specs;
}

}  // namespace

bool isSerialPort(const config::DeviceConfig& config) {
  return config.driver == "virtserialport" || config.driver == "virtconsole";
}

Result<std::string> virtioModel(const config::DeviceConfig& config, bool microvm) {
  std::string option = "-device " + config.driver;
  for (const char* model : {"virtio-rng", "virtio-net", "virtio-serial", "virtio-blk"}) {
    std::string name = model;
    if (config.driver == name + "-pci") {
      if (microvm) return Error(option + ": microvm has no PCI bus (use " + name + "-device, on virtio-mmio)");
      return name;
    }
    if (config.driver == name + "-device") {
      if (!microvm) return Error(option + ": this machine has no virtio-mmio bus (use " + name + "-pci, or -M microvm)");
      return name;
    }
  }
  return Error(option + ": device '" + config.driver + "' is not supported");
}

Result<PlannedDevice> createDevice(const config::DeviceConfig& config, const DeviceContext& context) {
  auto kv = KeyValues::fromPairs("-device " + config.driver, config.properties);
  const std::string& option = kv.option();
  bool microvm = context.machine.isMicrovm();
  auto model = virtioModel(config, microvm);
  if (!model) return model.error();
  PlannedDevice planned;
  if (auto id = kv.take("id")) planned.id = *id;
  if (microvm) {
    (void)kv.take("bus");  // virtio-mmio-bus.N, checked when the transports were placed (microvm_layout.h)
  } else {
    if (auto addr = kv.take("addr")) {
      auto slot = parseSlot(option, *addr);
      if (!slot) return slot.error();
      planned.slot = *slot;
    }
    if (auto bus = kv.take("bus"); bus && *bus != "pci.0" && *bus != "pcie.0") {
      return Error(option + ": bus '" + *bus + "' does not exist (pci.0)");
    }
  }

  if (*model == "virtio-rng") {
    (void)kv.take("rng");  // QEMU's rng backend object; ours always reads /dev/urandom
    auto rng = virtio::VirtioRng::create();
    if (!rng) return rng.error();
    planned.device = std::move(*rng);
  } else if (*model == "virtio-net") {
    auto netdev_id = kv.take("netdev");
    if (!netdev_id) return Error(option + ": netdev= is required");
    const config::NetdevConfig* netdev = context.machine.findNetdev(*netdev_id);
    if (!netdev) return Error(option + ": netdev '" + *netdev_id + "' not found");
    std::array<uint8_t, 6> mac{0x52, 0x54, 0x00, 0x12, 0x34, static_cast<uint8_t>(0x56 + context.nics++)};  // QEMU's default
    if (auto text = kv.take("mac")) {
      auto parsed = net::parseMac(*text);
      if (!parsed) return parsed.error().withContext(option);
      mac = *parsed;
    }
    for (const char* accepted : {"mq", "vectors", "romfile", "bootindex", "rx_queue_size", "tx_queue_size"}) (void)kv.take(accepted);
    auto backend = context.host.openNetdev(*netdev);
    if (!backend) return backend.error().withContext(option);
    planned.device = std::make_unique<virtio::VirtioNet>(std::move(*backend), mac);
    planned.netdev = *netdev_id;
  } else if (*model == "virtio-serial") {
    uint32_t max_ports = 31;  // QEMU's default
    if (auto text = kv.take("max_ports")) {
      auto n = parseUnsigned(*text);
      if (!n || *n < 1 || *n > 511) return Error(option + ": max_ports=" + *text + " must be 1..511");
      max_ports = static_cast<uint32_t>(*n);
    }
    (void)kv.take("vectors");
    bool first = context.serial_controllers++ == 0;
    auto ports = takePorts(planned.id, first, max_ports, context);
    if (!ports) return ports.error();
    planned.device = std::make_unique<virtio::VirtioConsole>(max_ports, std::move(*ports),
                                                             [&host = context.host](const std::string& id, bool open) { host.portChanged(id, open); });
  } else {
    auto drive_id = kv.take("drive");
    if (!drive_id) return Error(option + ": drive= is required");
    const config::DriveConfig* drive = context.machine.findDrive(*drive_id);
    if (!drive) return Error(option + ": drive '" + *drive_id + "' not found");
    std::string serial = kv.take("serial").value_or(*drive_id);
    if (auto text = kv.take("bootindex")) {
      auto index = parseUnsigned(*text);
      if (!index || *index > 0xFFFF) return Error(option + ": bootindex=" + *text + " is not a boot order (0-65535)");
      planned.bootindex = static_cast<int>(*index);
    }
    for (const char* accepted : {"num-queues", "queue-size", "config-wce", "scsi", "write-cache"}) (void)kv.take(accepted);
    storage::OpenOptions open;
    auto format = storage::parseFormat(drive->format.empty() ? "auto" : drive->format);
    if (!format) return format.error().withContext(option);
    open.format = *format;
    open.readOnly = drive->read_only;
    open.cache = drive->direct ? storage::CacheMode::None : storage::CacheMode::Writeback;
    // cache=unsafe (no_flush): the guest gave up durability, so qcow2 skips its ordering barriers.
    open.writeBarriers = !drive->no_flush;
    open.opener = &context.host.files();
    // A destination of a migration leaves the image unlocked until its guest state has arrived
    // (Machine::claimDisks): until then the source's worker holds it and still writes to it.
    open.lock = context.machine.incoming.empty();
    auto disk = storage::openImage(drive->path, open);
    if (!disk) return disk.error().withContext("drive " + drive->id);
    std::shared_ptr<storage::BlockDevice> shared = std::move(*disk);
    std::string device_id = drive->id;
    DeviceHost& host = context.host;
    auto blk = std::make_unique<virtio::VirtioBlk>(
        shared, serial, drive->no_flush,
        [&host](std::function<void()> work, std::function<void()> done) { host.runIo(std::move(work), std::move(done)); },
        [&host, device_id](const std::string& operation, const std::string& reason) {
          host.blockIoError(device_id, operation, reason);
        });
    planned.disk = DiskInfo{drive->id, drive->path, storage::formatName(shared->format()), drive->read_only,
                            drive->direct, drive->no_flush, shared->size(), shared, open, blk.get()};
    planned.device = std::move(blk);
  }
  if (auto st = kv.finish(); !st) return st.error();
  return planned;
}

}  // namespace vmmd
