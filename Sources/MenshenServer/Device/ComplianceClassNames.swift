import MenshenDevice

/// The compliance policy's device class (`MenshenDevice.DeviceClass`); see ``StoreDeviceClass``.
public typealias ComplianceDeviceClass = DeviceClass
